/* cmd_sample: `lstmgen sample`, streaming generated text to stdout as it is made. */
#include "cli.h"

#include "checkpoint.h"
#include "corpus.h"
#include "err.h"
#include "rng.h"
#include "sample.h"

#include <cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STR(x) #x
#define XSTR(x) STR(x) /* a macro's value in a string literal */

static const char help[] =
    "usage: lstmgen sample --model CKPT|NAME [options]\n"
    "\n"
    "Prints the text the model generates after the seed text (not the seed itself).\n"
    "\n"
    "  --model CKPT|NAME   checkpoint to sample from (required): a file, or a model's name in\n"
    "                      LSTMGEN_MODELS's directories or ./models, as lstmgen serve finds it\n"
    "  --seed-text S       text to continue (default: empty, start from the zero state)\n"
    "  --seed-file FILE    the seed text from a file ('-': standard input)\n"
    "  --temperature T     reweights p_i^(1/T); 0 is greedy (default "
    XSTR(SAMPLE_DEFAULT_TEMPERATURE) ")\n"
    "  --length N          characters to generate (default " XSTR(SAMPLE_DEFAULT_LENGTH) ")\n"
    "  --top-k K           keep the K most probable characters, 0: all (default "
    XSTR(SAMPLE_DEFAULT_TOP_K) ")\n"
    "  --top-p P           keep the smallest set with probability >= P, in (0, 1] (default "
    XSTR(SAMPLE_DEFAULT_TOP_P) ")\n"
    "  --stop S            stop when the text ends with S (repeatable); S is not printed\n"
    "  --seed N            random seed; the same model, options and seed give the same text\n"
    "                      (default: a fresh one, shown by --json)\n"
    "  --mode M            auto (default: stateful for sequence-regime models, window for\n"
    "                      window-regime ones), stateful (O(1) per character), or window\n"
    "                      (re-read the last maxlen characters for each one, as the book does)\n"
    "  --skip-unknown      drop seed characters outside the model's vocabulary\n"
    "  --json              print one JSON object with the text, seed, mode and counts\n";

/* Text as it is made: flushed per character on a terminal, buffered into a pipe or file (a
 * write per character would cost as much as generating it). */
static int emit_stdout(void *ctx, const char *utf8, size_t len)
{
    const int *tty = ctx;
    fwrite(utf8, 1, len, stdout);
    if (*tty)
        fflush(stdout);
    return ferror(stdout) ? 1 : 0; /* a closed pipe stops generation */
}

int cmd_sample(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},      {"seed-text", required_argument, 0, 's'},
        {"temperature", required_argument, 0, 'T'}, {"length", required_argument, 0, 'n'},
        {"top-k", required_argument, 0, 'k'},      {"top-p", required_argument, 0, 'p'},
        {"stop", required_argument, 0, 'x'},       {"seed", required_argument, 0, 'S'},
        {"mode", required_argument, 0, 'M'},       {"skip-unknown", no_argument, 0, 'u'},
        {"seed-file", required_argument, 0, 'f'},
        {"json", no_argument, 0, 'j'},             {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *cmd = "sample";
    const char *path = NULL, *seed_file = NULL;
    sample_request req = {.seed_text = "", .length = SAMPLE_DEFAULT_LENGTH,
                          .temperature = SAMPLE_DEFAULT_TEMPERATURE,
                          .top_k = SAMPLE_DEFAULT_TOP_K, .top_p = SAMPLE_DEFAULT_TOP_P};
    const char **stops = NULL;
    int json = 0, have_seed = 0, bad = 0;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'm': path = optarg; break;
        case 's': req.seed_text = optarg; break;
        case 'f': seed_file = optarg; break;
        case 'T': bad = arg_double(&req.temperature, cmd, "temperature", optarg, 0, 1e6); break;
        case 'n': bad = arg_int(&req.length, cmd, "length", optarg, 0, 100000000); break;
        case 'k': bad = arg_int(&req.top_k, cmd, "top-k", optarg, 0, 1 << 20); break;
        case 'p': bad = arg_double(&req.top_p, cmd, "top-p", optarg, 1e-12, 1); break;
        case 'S': bad = arg_u64(&req.seed, cmd, "seed", optarg); have_seed = 1; break;
        case 'u': req.skip_unknown = 1; break;
        case 'j': json = 1; break;
        case 'x': {
            if (!*optarg) {
                free(stops);
                return usage_error(cmd, "--stop must not be empty");
            }
            const char **more = realloc(stops, (size_t)(req.n_stop + 1) * sizeof *stops);
            if (!more) {
                free(stops);
                return EXIT_RUNTIME;
            }
            stops = more;
            stops[req.n_stop++] = optarg;
            break;
        }
        case 'M':
            if ((req.mode = sample_mode_parse(optarg)) < 0)
                bad = usage_error(cmd, "--mode must be auto, stateful or window, got '%s'", optarg);
            break;
        case 'h': fputs(help, stdout); free(stops); return EXIT_OK;
        default: bad = usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
        if (bad) {
            free(stops);
            return EXIT_USAGE;
        }
    }
    if (optind < argc || !path) {
        free(stops);
        return optind < argc ? usage_error(cmd, "unexpected argument '%s'", argv[optind])
                             : usage_error(cmd, "--model CKPT is required");
    }
    req.stop = stops;
    req.seed_len = strlen(req.seed_text);
    if (!have_seed)
        req.seed = rng_fresh_seed();
    int tty = isatty(STDOUT_FILENO);
    if (!json) {
        req.emit = emit_stdout;
        req.emit_ctx = &tty;
    }

    char err[512], ckpt[4200];
    model *m = NULL;
    char *seed_text = NULL;
    size_t seed_len = 0;
    model_path(ckpt, sizeof ckpt, path);
    int rc = seed_file ? corpus_read_file(&seed_text, &seed_len, seed_file, err, sizeof err) : 0;
    if (seed_text) {
        req.seed_text = seed_text;
        req.seed_len = seed_len;
    }
    if (rc == 0)
        rc = checkpoint_load(&m, NULL, NULL, ckpt, err, sizeof err);
    sample_result res = {0};
    if (rc == 0)
        rc = sample_generate(&res, m, &req, err, sizeof err);
    if (rc) {
        fprintf(stderr, "lstmgen sample: %s\n", err);
        model_free(m);
        free(stops);
        free(seed_text);
        return EXIT_RUNTIME;
    }
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "text", res.text);
        cJSON_AddStringToObject(o, "seed_text", seed_text ? "" : req.seed_text);
        /* as an integer token: a double would print some seeds as 5.66263944979121e+15, or
         * round those above 2^53, and --seed must be able to take it back */
        char seed[24];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)req.seed);
        cJSON_AddRawToObject(o, "seed", seed);
        cJSON_AddStringToObject(o, "mode", sample_mode_name(res.mode));
        cJSON_AddStringToObject(o, "finish_reason", sample_finish_name(res.finish_reason));
        cJSON_AddNumberToObject(o, "seed_chars", (double)res.seed_chars);
        cJSON_AddNumberToObject(o, "generated_chars", (double)res.generated_chars);
        cJSON_AddNumberToObject(o, "temperature", req.temperature);
        char *text = cJSON_PrintUnformatted(o);
        if (text)
            puts(text);
        cJSON_free(text);
        cJSON_Delete(o);
    } else if (isatty(STDOUT_FILENO)) {
        putchar('\n');
    }
    fflush(stdout);
    sample_result_deinit(&res);
    model_free(m);
    free(stops);
    free(seed_text);
    return ferror(stdout) ? EXIT_RUNTIME : EXIT_OK;
}
