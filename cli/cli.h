/* cli: the lstmgen command line. Each subcommand returns the process exit code: 0 on success,
 * 1 on a runtime error, 2 on a usage error, with a one-line message on stderr. */
#ifndef CLI_CLI_H
#define CLI_CLI_H

#include <stddef.h>
#include <stdint.h>

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

int cmd_train(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);

/* Strict number parsing for option values: the whole string must be a finite number in
 * [lo, hi]; otherwise prints "lstmgen CMD: --NAME: ..." and returns nonzero. */
int arg_int(int *out, const char *cmd, const char *name, const char *s, long lo, long hi);
int arg_u64(uint64_t *out, const char *cmd, const char *name, const char *s);
int arg_double(double *out, const char *cmd, const char *name, const char *s, double lo, double hi);

/* The checkpoint a --model argument means: a file path as given, or else a model NAME looked up
 * as `lstmgen serve` would, in LSTMGEN_MODELS (DIR[:DIR...]) or ./models. Writes the path to
 * load into buf (the argument itself when nothing matches, so that the error names it). */
void model_path(char *buf, size_t n, const char *arg);

/* Prints "lstmgen CMD: message" and the hint to run --help; returns EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
