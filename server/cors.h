/* cors: which origins' pages may read the API's answers (--cors-origin), and which request
 * headers a preflight may allow. Browsers enforce it; the server only says. */
#ifndef SERVER_CORS_H
#define SERVER_CORS_H

/* What Access-Control-Allow-Origin says to a request from origin (NULL: no Origin header):
 * "*" when any origin is allowed, origin itself when it is in the list, else NULL (nothing is
 * sent, and the browser keeps the answer from the page). */
const char *cors_allow_origin(const char *configured, const char *origin);

/* 1 if an Access-Control-Request-Headers value is a list of header names (RFC 9110 tokens
 * separated by commas and spaces), which the preflight may then allow as asked. */
int cors_header_list_valid(const char *list);

#endif
