/* jobopts: a training job's "hyperparameters" object -> train_options, with the same names and
 * defaults as `lstmgen train` (dashes become underscores). Used when a job is created (so a bad
 * value is a 400 naming the field) and again when the worker runs it. */
#ifndef SERVER_JOBOPTS_H
#define SERVER_JOBOPTS_H

#include "train.h"

#include <cJSON.h>
#include <stddef.h>

/* Fills o from hp (a JSON object, or NULL for all defaults). A fine-tuning job's options take
 * base's architecture (train_opts_adopt_model; base NULL otherwise). On a bad field returns
 * nonzero with the field's name in field (size fieldlen) and a message in err. */
int jobopts_parse(train_options *o, const cJSON *hp, const model_config *base, char *field,
                  size_t fieldlen, char *err, size_t errlen);

#endif
