/* routes_vocab: POST /tokenize and POST /detokenize, a model's characters and their ids, as
 * llama.cpp's server has them. A model's "tokens" are its vocabulary's characters (Unicode code
 * points), numbered in code point order. */
#include "routes.h"

#include "app.h"
#include "err.h"
#include "jsonreq.h"
#include "serve.h"
#include "utf8.h"
#include "vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int route_tokenize(request *r)
{
    static const char *const fields[] = {"model", "content", "with_pieces", "unknown_chars",
                                         "add_special", NULL};
    cJSON *body = json_body_or_reply(r);
    if (!body)
        return 0;
    const char *model = NULL, *content = NULL;
    int with_pieces = 0, add_special = 0, skip = 0;
    loaded_model *lm = NULL;
    uint32_t *cps = NULL;
    int *ids = NULL;
    if (json_known_fields_or_reply(r, body, fields) ||
        json_string_or_reply(r, body, "model", &model) ||
        json_string_or_reply(r, body, "content", &content) ||
        json_bool_or_reply(r, body, "with_pieces", &with_pieces) ||
        json_bool_or_reply(r, body, "add_special", &add_special) || /* none: accepted */
        json_unknown_chars_or_reply(r, body, &skip))
        goto out;
    if (!content) {
        reply_error(r, 400, "missing_field", "content", "content is required (it may be \"\")");
        goto out;
    }
    if (model_acquire_or_reply(r, model, &lm))
        goto out;
    char err[256];
    size_t n = 0, bad = 0, n_ids = 0;
    if (utf8_decode(&cps, &n, &bad, content, strlen(content), err, sizeof err)) {
        reply_error(r, 400, "invalid_utf8", "content", "content: %s", err);
        goto out;
    }
    for (size_t i = 0; lm->m->cfg.lowercase && i < n; i++) /* as generation reads it */
        cps[i] = utf8_lower(cps[i]);
    ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) {
        reply_error(r, 500, "internal", NULL, "out of memory");
        goto out;
    }
    if (vocab_encode(ids, &n_ids, &bad, &lm->m->voc, cps, n, skip, err, sizeof err)) {
        reply_error(r, 400, "unknown_character", "content", "content: %s", err);
        goto out;
    }
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "tokens");
    for (size_t i = 0; i < n_ids; i++) {
        if (!with_pieces) {
            cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids[i]));
            continue;
        }
        char piece[5] = {0};
        utf8_encode(piece, lm->m->voc.chars[ids[i]]);
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", ids[i]);
        cJSON_AddStringToObject(t, "piece", piece);
        cJSON_AddItemToArray(arr, t);
    }
    cJSON_AddStringToObject(o, "model", lm->name);
    reply_json_take(r, 200, o);
out:
    free(ids);
    free(cps);
    registry_release(r->app->models, lm);
    cJSON_Delete(body);
    return 0;
}

int route_detokenize(request *r)
{
    static const char *const fields[] = {"model", "tokens", NULL};
    cJSON *body = json_body_or_reply(r);
    if (!body)
        return 0;
    const char *model = NULL;
    loaded_model *lm = NULL;
    uint32_t *cps = NULL;
    char *text = NULL;
    if (json_known_fields_or_reply(r, body, fields) ||
        json_string_or_reply(r, body, "model", &model))
        goto out;
    const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(body, "tokens");
    if (!cJSON_IsArray(tokens)) {
        reply_error(r, 400, tokens ? "invalid_type" : "missing_field", "tokens",
                    "tokens must be an array of character ids");
        goto out;
    }
    if (model_acquire_or_reply(r, model, &lm))
        goto out;
    int n = cJSON_GetArraySize(tokens), V = lm->m->V, k = 0;
    cps = malloc((n ? (size_t)n : 1) * sizeof *cps);
    if (!cps) {
        reply_error(r, 500, "internal", NULL, "out of memory");
        goto out;
    }
    for (const cJSON *t = tokens->child; t; t = t->next, k++) {
        double v = cJSON_IsNumber(t) ? t->valuedouble : -1;
        if (!(v >= 0 && v < V && v == (int)v)) {
            reply_error(r, 400, "out_of_range", "tokens", "tokens[%d] must be a character id "
                        "0..%d of model '%s'", k, V - 1, lm->name);
            goto out;
        }
        cps[k] = lm->m->voc.chars[(int)v];
    }
    text = utf8_encode_all(cps, (size_t)n);
    if (!text) {
        reply_error(r, 500, "internal", NULL, "out of memory");
        goto out;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "content", text);
    cJSON_AddStringToObject(o, "model", lm->name);
    reply_json_take(r, 200, o);
out:
    free(text);
    free(cps);
    registry_release(r->app->models, lm);
    cJSON_Delete(body);
    return 0;
}
