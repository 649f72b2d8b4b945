/* test_trainopts: the training options' table and its rules: the regimes' defaults, the three
 * rules for unset options, the ranges at their edges (floats included), both spellings of a
 * name, and that train_options_check holds a train_options to the same table. */
#include "test.h"

#include "err.h"
#include "optim.h"
#include "trainopts.h"

static void build_ok(train_options *o, const int *given, const double *value)
{
    char err[256];
    const char *field = NULL;
    int rc = train_opts_build(o, given, value, &field, err, sizeof err);
    if (rc)
        TEST_FAIL("train_opts_build: %s (%s)", err, field ? field : "");
}

int main(void)
{
    int given[TOPT_COUNT] = {0};
    double value[TOPT_COUNT] = {0};
    train_options o;

    /* the book's recipe and char-rnn's */
    build_ok(&o, given, value);
    ASSERT_EQ_INT(o.cfg.regime, REGIME_WINDOW);
    ASSERT_EQ_INT(o.cfg.L, 1);
    ASSERT_EQ_INT(o.cfg.H, 128);
    ASSERT_EQ_INT(o.batch, 128);
    ASSERT_EQ_INT(o.optimizer, OPTIM_RMSPROP);
    ASSERT_NEAR(o.lr, 0.01, 1e-9);
    ASSERT_EQ_INT(o.cfg.maxlen, 60);
    ASSERT_EQ_INT(o.cfg.step, 3);
    ASSERT_EQ_INT(o.epochs, 20);
    given[TOPT_REGIME] = 1, value[TOPT_REGIME] = REGIME_SEQUENCE;
    build_ok(&o, given, value);
    ASSERT_EQ_INT(o.cfg.L, 2);
    ASSERT_EQ_INT(o.cfg.H, 256);
    ASSERT_EQ_INT(o.batch, 64);
    ASSERT_EQ_INT(o.optimizer, OPTIM_ADAM);
    ASSERT_NEAR(o.lr, 0.002, 1e-9);
    ASSERT_NEAR(o.cfg.dropout, 0.1, 1e-7);
    ASSERT_NEAR(o.clip, 5, 0);

    /* rule: the other optimizer without lr takes its own default; with lr, lr wins */
    given[TOPT_OPTIMIZER] = 1, value[TOPT_OPTIMIZER] = OPTIM_RMSPROP;
    build_ok(&o, given, value);
    ASSERT_NEAR(o.lr, 0.01, 1e-9);
    given[TOPT_LR] = 1, value[TOPT_LR] = 0.005;
    build_ok(&o, given, value);
    ASSERT_NEAR(o.lr, 0.005, 1e-9);
    /* rule: one layer, no dropout unless set */
    given[TOPT_LAYERS] = 1, value[TOPT_LAYERS] = 1;
    build_ok(&o, given, value);
    ASSERT_NEAR(o.cfg.dropout, 0, 0);
    given[TOPT_DROPOUT] = 1, value[TOPT_DROPOUT] = 0.3;
    build_ok(&o, given, value);
    ASSERT_NEAR(o.cfg.dropout, 0.3, 1e-7);
    /* rule: a time budget without epochs runs until it is spent */
    given[TOPT_MAX_SECONDS] = 1, value[TOPT_MAX_SECONDS] = 40;
    build_ok(&o, given, value);
    ASSERT_EQ_INT(o.epochs, 1000000);
    given[TOPT_EPOCHS] = 1, value[TOPT_EPOCHS] = 7;
    build_ok(&o, given, value);
    ASSERT_EQ_INT(o.epochs, 7);

    /* the edges, floats included (dropout 0.99 is 0.99000001f) */
    char err[256];
    ASSERT_EQ_INT(train_opt_check(TOPT_DROPOUT, 0.99, err, sizeof err), 0);
    ASSERT_EQ_INT(train_opt_check(TOPT_DROPOUT, 0.991, err, sizeof err), CORE_ERANGE);
    ASSERT(strstr(err, "dropout") != NULL);
    ASSERT_EQ_INT(train_opt_check(TOPT_LR, 1e-9, err, sizeof err), 0);
    ASSERT_EQ_INT(train_opt_check(TOPT_LAYERS, 2.5, err, sizeof err), CORE_ERANGE);
    ASSERT_EQ_INT(train_opt_check(TOPT_LAYERS, NAN, err, sizeof err), CORE_ERANGE);
    ASSERT_EQ_INT(train_opt_check(TOPT_SEED, 9007199254740992.0, err, sizeof err), 0);
    given[TOPT_DROPOUT] = 1, value[TOPT_DROPOUT] = 0.99;
    build_ok(&o, given, value);
    o.out = "x";
    ASSERT_EQ_INT(train_options_check(&o, err, sizeof err), 0); /* the float it holds passes */
    const char *field = NULL;
    value[TOPT_HIDDEN] = 4, given[TOPT_HIDDEN] = 1;
    ASSERT_EQ_INT(train_opts_build(&o, given, value, &field, err, sizeof err), CORE_ERANGE);
    ASSERT_EQ_STR(field, "hidden");

    /* names: both spellings; parsing text as the command line does */
    ASSERT_EQ_INT(train_opt_find("seq_len"), TOPT_SEQ_LEN);
    ASSERT_EQ_INT(train_opt_find("seq-len"), TOPT_SEQ_LEN);
    ASSERT_EQ_INT(train_opt_find("seq"), -1);
    double v;
    ASSERT_EQ_INT(train_opt_parse(TOPT_OPTIMIZER, "adam", &v, err, sizeof err), 0);
    ASSERT_NEAR(v, OPTIM_ADAM, 0);
    ASSERT_EQ_INT(train_opt_parse(TOPT_OPTIMIZER, "sgd", &v, err, sizeof err), CORE_ERANGE);
    ASSERT(strstr(err, "rmsprop or adam") != NULL);
    ASSERT_EQ_INT(train_opt_parse(TOPT_LR, "1e-2x", &v, err, sizeof err), CORE_ERANGE);

    /* train_options_check reads the same table: a value set directly is held to it */
    train_options_default(&o);
    o.out = "x";
    o.lr_decay = 1.5f;
    ASSERT_EQ_INT(train_options_check(&o, err, sizeof err), CORE_ERANGE);
    ASSERT(strstr(err, "lr_decay") != NULL);
    printf("test_trainopts: ok (%d options)\n", TOPT_COUNT);
    return 0;
}
