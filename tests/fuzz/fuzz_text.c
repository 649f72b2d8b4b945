/* fuzz_text: libFuzzer target for the text paths a client controls: UTF-8 decoding, corpus
 * preparation, and seed-text encoding against a small model. */
#include "corpus.h"
#include "model.h"
#include "sample.h"
#include "utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    uint32_t *cps;
    size_t n;
    if (utf8_decode(&cps, &n, NULL, text, size, NULL, 0) == 0) {
        char *back = utf8_encode_all(cps, n);
        if (!back || memcmp(back, text, size) != 0)
            abort(); /* decoding then encoding valid UTF-8 must give the same bytes */
        free(back);
        free(cps);
    }
    corpus c;
    if (corpus_init(&c, text, size, size % 2, 0.1, NULL, NULL, 0) == 0) {
        model_config cfg = {.L = 1, .H = 8, .regime = REGIME_SEQUENCE, .maxlen = 4, .step = 1,
                            .seq_len = 4};
        model *m;
        if (model_new(&m, &cfg, &c.voc, NULL, 0) == 0) {
            int *ids;
            size_t k;
            if (sample_encode_text(&ids, &k, m, text, size, 0, NULL, 0) == 0)
                free(ids);
            sample_request req = {.seed_text = text, .seed_len = size, .length = 8,
                                  .temperature = 1.0, .top_p = 0.9, .top_k = 3, .seed = size,
                                  .skip_unknown = 1};
            sample_result res;
            if (sample_generate(&res, m, &req, NULL, 0) == 0)
                sample_result_deinit(&res);
            model_free(m);
        }
        corpus_deinit(&c);
    }
    return 0;
}
