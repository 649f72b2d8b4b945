/* cmd_eval: `lstmgen eval`, the mean cross-entropy of a text under a model. */
#include "cli.h"

#include "checkpoint.h"
#include "corpus.h"
#include "err.h"
#include "score.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const char help[] =
    "usage: lstmgen eval --model CKPT|NAME [--skip-unknown] FILE\n"
    "\n"
    "Reads FILE ('-': standard input) through the model from the zero state, character by\n"
    "character, and prints\n"
    "{\"nats\": ..., \"bits\": ..., \"chars\": ...}: the mean cross-entropy per predicted "
    "character\n"
    "(every character but the first) in nats and bits, and how many were predicted.\n"
    "  --skip-unknown   drop characters outside the model's vocabulary instead of failing\n";

int cmd_eval(int argc, char **argv)
{
    static const struct option longopts[] = {{"model", required_argument, 0, 'm'},
                                              {"skip-unknown", no_argument, 0, 'u'},
                                              {"help", no_argument, 0, 'h'},
                                              {0, 0, 0, 0}};
    const char *cmd = "eval", *path = NULL;
    int skip = 0, opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'm': path = optarg; break;
        case 'u': skip = 1; break;
        case 'h': fputs(help, stdout); return EXIT_OK;
        default: return usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (!path)
        return usage_error(cmd, "--model CKPT is required");
    if (optind + 1 != argc)
        return usage_error(cmd, "expected exactly one FILE");
    char err[512];
    model *m = NULL;
    char *text = NULL;
    size_t len = 0;
    score_result res = {0};
    char ckpt[4200];
    model_path(ckpt, sizeof ckpt, path);
    int rc = checkpoint_load(&m, NULL, NULL, ckpt, err, sizeof err);
    if (rc == 0)
        rc = corpus_read_file(&text, &len, argv[optind], err, sizeof err);
    if (rc == 0)
        rc = score_text(&res, m, text, len, 0, skip, err, sizeof err);
    if (rc == 0 && res.n < 2)
        rc = core_errf(err, sizeof err, CORE_EINVAL, "%s has fewer than 2 characters to score",
                       argv[optind]);
    if (rc == 0) {
        double nats = -score_mean_nats(&res);
        printf("{\"nats\": %.6f, \"bits\": %.6f, \"chars\": %zu}\n", nats, nats / log(2.0),
               res.n - 1);
    } else {
        fprintf(stderr, "lstmgen eval: %s\n", err);
    }
    score_result_deinit(&res);
    free(text);
    model_free(m);
    return rc ? EXIT_RUNTIME : EXIT_OK;
}
