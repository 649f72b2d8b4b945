/* main: lstmgen's entry point; dispatches to a subcommand. */
#include "cli.h"
#include "mm.h"

#include "serve.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: lstmgen COMMAND [options]\n"
    "\n"
    "Character-level LSTM language models: train on a text, then generate text like it.\n"
    "\n"
    "commands:\n"
    "  train    train a model on a UTF-8 text file\n"
    "  sample   generate text from a model\n"
    "  eval     mean cross-entropy of a text under a model\n"
    "  info     a checkpoint's metadata and size\n"
    "  serve    the HTTP service: generation, OpenAI-compatible completions, training jobs\n"
    "\n"
    "Run 'lstmgen COMMAND --help' for a command's options.\n";

int main(int argc, char **argv)
{
    mm_choose_blas_kernels(argv);
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    signal(SIGXFSZ, SIG_IGN); /* a file-size limit (a full disk) makes writes fail, with a
                                 message, rather than killing the process */
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        puts("lstmgen " LSTMGEN_VERSION);
        return EXIT_OK;
    }
    if (strcmp(cmd, "train") == 0)
        return cmd_train(argc - 1, argv + 1);
    if (strcmp(cmd, "sample") == 0)
        return cmd_sample(argc - 1, argv + 1);
    if (strcmp(cmd, "eval") == 0)
        return cmd_eval(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return serve_main(argc - 1, argv + 1);
    if (strcmp(cmd, "info") == 0)
        return cmd_info(argc - 1, argv + 1);
    fprintf(stderr, "lstmgen: unknown command '%s'\n%s", cmd, usage);
    return EXIT_USAGE;
}
