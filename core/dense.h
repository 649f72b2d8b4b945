/* dense: the output layer (linear map from the top LSTM's hidden state to vocabulary logits) and
 * the softmax cross-entropy loss, each as a forward/backward pair. Backward accumulates (+=) into
 * parameter gradients. */
#ifndef CORE_DENSE_H
#define CORE_DENSE_H

/* out (N, O) = x (N, I) . w^T (I, O) + b, with w (O, I) as nn.Linear stores it. */
void linear_forward(float *out, const float *x, const float *w, const float *b, int N, int I,
                    int O);
/* dw (O, I) += dout^T . x; db (O) += column sums of dout; dx (N, I) = dout . w (if not NULL). */
void linear_backward(float *dw, float *db, float *dx, const float *dout, const float *x,
                     const float *w, int N, int I, int O);

/* Turns logits (N, V) into probabilities in place and returns the mean over the N rows of
 * -log p[target] (nats). Rows whose target is negative are skipped and excluded from the mean. */
double softmax_xent_forward(float *probs, const int *targets, int N, int V);
/* dlogits (N, V) = (probs - onehot(target)) * scale, where scale is 1 / (rows counted); written,
 * not accumulated (the logits are not parameters). dlogits may alias probs. */
void softmax_xent_backward(float *dlogits, const float *probs, const int *targets, int N, int V);

#endif
