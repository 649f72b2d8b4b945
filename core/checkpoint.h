/* checkpoint: models as safetensors files that PyTorch loads into
 *   lstm = nn.LSTM(V, H, L); fc = nn.Linear(H, V)
 * Layout: 8-byte little-endian header length N, N bytes of JSON header (padded with spaces to a
 * multiple of 8), then raw little-endian float32 tensors. Tensors: lstm.weight_ih_l{k} [4H, in],
 * lstm.weight_hh_l{k} [4H, H], lstm.bias_ih_l{k} [4H], lstm.bias_hh_l{k} [4H], fc.weight [V, H],
 * fc.bias [V], then any extra tensors the caller passes (the trainer's "optim." state).
 * __metadata__ (string values) holds "format": "lstmgen-1", "vocab" (a JSON array of one-character
 * strings), "lowercase", "regime", "maxlen", "step", "seq_len", "layers", "hidden", "dropout",
 * "data_sha256" (of everything after the header, so any flipped bit is caught), "header_sha256"
 * (of all N header bytes with its own 64 hex digits read as '0's, so a flipped header bit is
 * caught too) and every entry of the model's own metadata (entries named like the keys above are
 * not saved). */
#ifndef CORE_CHECKPOINT_H
#define CORE_CHECKPOINT_H

#include "model.h"

#include <stddef.h>
#include <stdint.h>

#define CKPT_NAME_MAX 96

/* An extra float32 tensor stored beside the model's (optimizer moments, carried state). */
typedef struct ckpt_tensor {
    char name[CKPT_NAME_MAX];
    int ndim;         /* 1..4 */
    int64_t shape[4];
    float *data;      /* prod(shape) floats */
} ckpt_tensor;

/* Writes m and the n_extra extra tensors to path atomically: a temporary file in the same
 * directory, fsync, rename, fsync of the directory. On failure path is untouched (an older file
 * stays intact) and no temporary file is left behind. Extra tensor names must start with "optim."
 * and be unique (CORE_EINVAL otherwise, since the loader would refuse them); a NaN or infinity in
 * any tensor is refused with CORE_ERANGE for the same reason. CORE_EIO names the path and errno. */
int checkpoint_save(const char *path, const model *m, const ckpt_tensor *extra, int n_extra,
                    char *err, size_t errlen);

/* Reads and validates a checkpoint: header length, JSON, metadata, dtypes, shapes consistent with
 * each other and with the vocabulary, offsets in range, contiguous and not overlapping, the data
 * checksum, finite values. On success *out is a new model (model_free it). If extra is not NULL,
 * tensors other than the model's are returned in a new array (*extra, *n_extra; release with
 * checkpoint_extra_free); if it is NULL they are validated and dropped. Nothing is written on
 * failure; the error message says what is wrong and where. */
int checkpoint_load(model **out, ckpt_tensor **extra, int *n_extra, const char *path, char *err,
                    size_t errlen);

/* As checkpoint_load, from n bytes in memory (the fuzz target). */
int checkpoint_parse(model **out, ckpt_tensor **extra, int *n_extra, const unsigned char *buf,
                     size_t n, char *err, size_t errlen);

void checkpoint_extra_free(ckpt_tensor *extra, int n_extra);

#endif
