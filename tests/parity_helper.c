/* parity_helper: the C side of tests/test_torch_parity.py, which checks core/ against PyTorch.
 *   probs CKPT TEXTFILE      for each character of the text, read statefully from the zero state
 *                            (infer_step), one line of V next-character probabilities
 *                            (softmax of the logits in double)
 *   step CKPT BATCHFILE OUT  one training step as core/train.c takes it (zero initial state, no
 *                            dropout, no clipping); prints "loss X", writes the gradient to
 *                            OUT.grad.safetensors and the updated model to OUT.updated.safetensors
 * Both outputs are checkpoints, so their tensors are in PyTorch's layout (w_ih of layer 0 too).
 * BATCHFILE holds whitespace-separated "key value..." pairs: regime window|sequence,
 * optimizer rmsprop|adam, lr X, T N, B N, then ids (T*B, time-major) and targets (B for window,
 * T*B time-major for sequence). Not a test itself: any failure prints a message and exits 1. */
#include "test.h"

#include "checkpoint.h"
#include "infer.h"
#include "model.h"
#include "net.h"
#include "optim.h"
#include "sample.h"
#include "score.h"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        TEST_FAIL("cannot open %s", path);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    ASSERT(buf);
    size_t k;
    while ((k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            ASSERT(buf);
        }
    }
    if (ferror(f))
        TEST_FAIL("cannot read %s", path);
    fclose(f);
    *len = n;
    return buf;
}

static model *load(const char *path)
{
    model *m = NULL;
    char err[512];
    int rc = checkpoint_load(&m, NULL, NULL, path, err, sizeof err);
    if (rc)
        TEST_FAIL("checkpoint_load: %s", err);
    return m;
}

/* One character through a one-off batch of one (the hand-rolled reference loops). */
static void step1(infer_state *st, const model *m, int id)
{
    infer_batch *b;
    ASSERT_EQ_INT(infer_batch_open(&b, m, 1), 0);
    infer_step(b, st, id);
    infer_batch_free(b);
}

// ----------------------------------------------------------------------------
// probs

static int cmd_probs(const char *ckpt, const char *text_path)
{
    model *m = load(ckpt);
    size_t len, n;
    char *text = read_file(text_path, &len);
    int *ids = NULL;
    char err[512];
    if (sample_encode_text(&ids, &n, m, text, len, 0, err, sizeof err))
        TEST_FAIL("sample_encode_text: %s", err);
    infer_state st;
    ASSERT_EQ_INT(infer_state_init(&st, m), 0);
    double *logp = malloc((size_t)m->V * sizeof *logp); /* (V) */
    ASSERT(logp);
    for (size_t i = 0; i < n; i++) {
        step1(&st, m, ids[i]);
        score_log_softmax(logp, st.logits, m->V);
        for (int v = 0; v < m->V; v++)
            printf("%s%.12g", v ? " " : "", exp(logp[v]));
        printf("\n");
    }
    free(logp);
    infer_state_deinit(&st);
    free(ids);
    free(text);
    model_free(m);
    return 0;
}

// ----------------------------------------------------------------------------
// step

typedef struct batch {
    int loss_all_steps; /* sequence regime */
    int optimizer;      /* enum optim_kind */
    float lr;
    int T, B;
    int *ids;     /* (T, B) */
    int *targets; /* (T, B) or (B) */
} batch;

static void read_ints(FILE *f, int *out, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        if (fscanf(f, "%d", &out[i]) != 1)
            TEST_FAIL("batch file: %s needs %d integers, got %d", what, n, i);
}

static void read_batch(batch *b, const char *path)
{
    memset(b, 0, sizeof *b);
    b->loss_all_steps = b->optimizer = -1;
    FILE *f = fopen(path, "r");
    if (!f)
        TEST_FAIL("cannot open %s", path);
    char key[32], val[32];
    while (fscanf(f, "%31s", key) == 1) {
        if (strcmp(key, "regime") == 0 && fscanf(f, "%31s", val) == 1) {
            b->loss_all_steps = strcmp(val, "sequence") == 0 ? 1
                                : strcmp(val, "window") == 0 ? 0
                                                             : -1;
        } else if (strcmp(key, "optimizer") == 0 && fscanf(f, "%31s", val) == 1) {
            b->optimizer = optim_parse(val);
        } else if (strcmp(key, "lr") == 0) {
            if (fscanf(f, "%f", &b->lr) != 1)
                TEST_FAIL("batch file: bad lr");
        } else if (strcmp(key, "T") == 0 || strcmp(key, "B") == 0) {
            if (fscanf(f, "%d", key[0] == 'T' ? &b->T : &b->B) != 1)
                TEST_FAIL("batch file: bad %s", key);
        } else if (strcmp(key, "ids") == 0 || strcmp(key, "targets") == 0) {
            if (b->T < 1 || b->B < 1 || b->loss_all_steps < 0)
                TEST_FAIL("batch file: regime, T and B must come before %s", key);
            int is_ids = key[0] == 'i';
            int n = is_ids || b->loss_all_steps ? b->T * b->B : b->B;
            int *p = malloc((size_t)n * sizeof *p);
            ASSERT(p);
            read_ints(f, p, n, key);
            if (is_ids)
                b->ids = p;
            else
                b->targets = p;
        } else {
            TEST_FAIL("batch file: unknown or incomplete entry \"%s\"", key);
        }
    }
    fclose(f);
    if (b->loss_all_steps < 0 || b->optimizer < 0 || !(b->lr > 0) || !b->ids || !b->targets)
        TEST_FAIL("batch file %s lacks regime, optimizer, lr, ids or targets", path);
}

static void save(const char *prefix, const char *suffix, const model *m)
{
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s%s", prefix, suffix);
    if (checkpoint_save(path, m, NULL, 0, err, sizeof err))
        TEST_FAIL("checkpoint_save: %s", err);
}

static int cmd_step(const char *ckpt, const char *batch_path, const char *out)
{
    model *m = load(ckpt);
    batch b;
    read_batch(&b, batch_path);
    int V = m->V, H = m->cfg.H, L = m->cfg.L;
    for (int i = 0; i < b.T * b.B; i++)
        ASSERT(b.ids[i] >= 0 && b.ids[i] < V);

    net n;
    ASSERT_EQ_INT(net_init(&n, V, H, L, b.B, b.T, b.loss_all_steps, 0.0f), 0);
    model *g = NULL; /* the gradient, as a model so it saves in the checkpoint layout */
    ASSERT_EQ_INT(model_clone(&g, m), 0);
    optim opt;
    ASSERT_EQ_INT(optim_init(&opt, b.optimizer, m->n_params), 0);

    /* as train_run: forward from the zero state, zero grads, backward, update */
    net_zero_state(&n);
    double loss = net_forward(&n, &m->p, b.ids, b.targets, b.B, b.T, NULL);
    memset(g->params, 0, g->n_params * sizeof *g->params);
    net_backward(&n, &g->p, &m->p);
    optim_step(&opt, m->params, g->params, b.lr);
    printf("loss %.17g\n", loss);

    save(out, ".grad.safetensors", g);
    save(out, ".updated.safetensors", m);
    optim_deinit(&opt);
    model_free(g);
    net_deinit(&n);
    free(b.ids);
    free(b.targets);
    model_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "probs") == 0)
        return cmd_probs(argv[2], argv[3]);
    if (argc == 5 && strcmp(argv[1], "step") == 0)
        return cmd_step(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: parity_helper probs CKPT TEXTFILE\n"
                    "       parity_helper step CKPT BATCHFILE OUT\n");
    return 2;
}
