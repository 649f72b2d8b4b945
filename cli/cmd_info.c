/* cmd_info: `lstmgen info`, what a checkpoint holds. */
#include "cli.h"

#include "checkpoint.h"
#include "err.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char help[] =
    "usage: lstmgen info [--json] CKPT\n"
    "\n"
    "Validates a checkpoint and prints its architecture, parameter count, file size and\n"
    "metadata (training options, epochs, losses, corpus sha256, creation time).\n";

int cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(help, stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (argv[i][0] == '-' || path) {
            return usage_error("info", "unexpected argument '%s'", argv[i]);
        } else {
            path = argv[i];
        }
    }
    if (!path)
        return usage_error("info", "expected a checkpoint path");
    char err[512], ckpt[4200];
    model *m = NULL;
    model_path(ckpt, sizeof ckpt, path); /* a file, or a model's name as lstmgen serve finds it */
    if (checkpoint_load(&m, NULL, NULL, ckpt, err, sizeof err)) {
        fprintf(stderr, "lstmgen info: %s\n", err);
        return EXIT_RUNTIME;
    }
    struct stat st;
    long long size = stat(ckpt, &st) == 0 ? (long long)st.st_size : -1;
    const char *regime = model_regime_name(m->cfg.regime);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "path", ckpt);
        cJSON_AddNumberToObject(o, "file_size", (double)size);
        cJSON_AddNumberToObject(o, "parameters", (double)m->n_params);
        cJSON_AddNumberToObject(o, "vocab_size", m->V);
        cJSON_AddNumberToObject(o, "layers", m->cfg.L);
        cJSON_AddNumberToObject(o, "hidden", m->cfg.H);
        cJSON_AddStringToObject(o, "regime", regime);
        cJSON_AddBoolToObject(o, "lowercase", m->cfg.lowercase);
        cJSON_AddNumberToObject(o, "dropout", m->cfg.dropout);
        cJSON *meta = cJSON_AddObjectToObject(o, "metadata");
        for (int i = 0; i < m->n_meta; i++)
            cJSON_AddStringToObject(meta, m->meta_keys[i], m->meta_vals[i]);
        char *text = cJSON_Print(o);
        if (text)
            puts(text);
        cJSON_free(text);
        cJSON_Delete(o);
    } else {
        printf("%s\n", ckpt);
        printf("  file size    %lld bytes\n", size);
        printf("  parameters   %zu\n", m->n_params);
        printf("  architecture %d x LSTM(%d), vocabulary %d characters, dropout %g\n", m->cfg.L,
               m->cfg.H, m->V, (double)m->cfg.dropout);
        if (m->cfg.regime == REGIME_SEQUENCE)
            printf("  regime       sequence (seq_len %d)\n", m->cfg.seq_len);
        else
            printf("  regime       window (maxlen %d, step %d)\n", m->cfg.maxlen, m->cfg.step);
        printf("  lowercase    %s\n", m->cfg.lowercase ? "yes" : "no");
        for (int i = 0; i < m->n_meta; i++)
            printf("  %-12s %s\n", m->meta_keys[i], m->meta_vals[i]);
    }
    model_free(m);
    return EXIT_OK;
}
