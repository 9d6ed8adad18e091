// One LSTM step's gates in one pass (ONNX gate order i, o, f, c; default activations:
// sigmoid, tanh, tanh; no clip, peepholes or input_forget), for rnn_lowering: the lowered
// step made ~20 launches of elementwise kernels, each a PoCL launch of ~100 us.
// pre = xw[xw_off + b, :] + hr[b, :] (the step's input projection row and the recurrent
// product); with `masked`, a row whose mask is 0 keeps its state and outputs 0 (a finished
// sequence), as the lowering's selects do. Same operation order as the lowered kernels.

static float sigm(float x) { return 1.0f / (1.0f + exp(-x)); }

__kernel void lstm_cell(int batch, int hidden, int xw_off, __global const float *xw,
                        __global const float *hr, __global const float *h_in,
                        __global const float *c_in, __global const uchar *mask, int masked,
                        __global float *y, __global float *h_out, __global float *c_out)
{
    const int n = batch * hidden;
    for (int idx = get_global_id(0); idx < n; idx += get_global_size(0)) {
        const int b = idx / hidden, j = idx % hidden;
        __global const float *x = xw + xw_off + b * 4 * hidden;
        __global const float *r = hr + b * 4 * hidden;
        const float i = sigm(x[j] + r[j]);
        const float o = sigm(x[hidden + j] + r[hidden + j]);
        const float f = sigm(x[2 * hidden + j] + r[2 * hidden + j]);
        const float g = tanh(x[3 * hidden + j] + r[3 * hidden + j]);
        const float c = f * c_in[idx] + i * g;
        const float h = o * tanh(c);
        const bool live = !masked || mask[b];
        y[idx] = live ? h : 0.0f;
        h_out[idx] = live ? h : h_in[idx];
        c_out[idx] = live ? c : c_in[idx];
    }
}
