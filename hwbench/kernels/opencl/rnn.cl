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

// A whole LSTM direction in one launch of one work-group (small cells: the translator's
// hidden 32), for rnn_lowering: per step the lowering made a recurrent GEMM launch and an
// lstm_cell launch, ~50 us of host work each on PoCL. Step t (seq-1 .. 0 with `reverse`)
// reads h from one half of `hbuf` (2 x batch x hidden) and writes the other; a barrier
// between steps (one work-group: a global fence orders its own writes). The recurrent
// product r[g*hidden+j] = sum_k h[b,k] * rk[g*hidden+j, k], k ascending; then as lstm_cell.
// `mask` (seq x batch, uchar) with `masked`: a finished row keeps its state, outputs 0.
__kernel void lstm_sequence(int seq, int batch, int hidden, int reverse,
                            __global const float *xw, __global const float *rk,
                            __global const float *h0, __global const float *c0,
                            __global const uchar *mask, int masked, __global float *hbuf,
                            __global float *y, __global float *h_out, __global float *c_out)
{
    const int n = batch * hidden;
    const int lid = get_local_id(0), lsz = get_local_size(0);
    for (int idx = lid; idx < n; idx += lsz) {
        hbuf[idx] = h0[idx];
        c_out[idx] = c0[idx];
    }
    barrier(CLK_GLOBAL_MEM_FENCE);
    for (int s = 0; s < seq; s++) {
        const int t = reverse ? seq - 1 - s : s;
        __global const float *h_in = hbuf + (s & 1) * n;
        __global float *h_next = hbuf + ((s + 1) & 1) * n;
        for (int idx = lid; idx < n; idx += lsz) {
            const int b = idx / hidden, j = idx % hidden;
            __global const float *x = xw + (t * batch + b) * 4 * hidden;
            __global const float *hb = h_in + b * hidden;
            // the four gates' sums side by side: four independent chains of adds (one
            // gate's alone waited on each add before the next: ~140 ns a cell at hidden 32)
            __global const float *w0 = rk + j * hidden, *w1 = w0 + hidden * hidden;
            __global const float *w2 = w1 + hidden * hidden, *w3 = w2 + hidden * hidden;
            float r[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int k = 0; k < hidden; k++) {
                const float hk = hb[k];
                r[0] += hk * w0[k];
                r[1] += hk * w1[k];
                r[2] += hk * w2[k];
                r[3] += hk * w3[k];
            }
            const float i = sigm(x[j] + r[0]);
            const float o = sigm(x[hidden + j] + r[1]);
            const float f = sigm(x[2 * hidden + j] + r[2]);
            const float g = tanh(x[3 * hidden + j] + r[3]);
            const float c_old = c_out[idx];
            const float c = f * c_old + i * g;
            const float h = o * tanh(c);
            const bool live = !masked || mask[t * batch + b];
            y[t * n + idx] = live ? h : 0.0f;
            h_next[idx] = live ? h : h_in[idx];
            c_out[idx] = live ? c : c_old;
        }
        barrier(CLK_GLOBAL_MEM_FENCE);
    }
    for (int idx = lid; idx < n; idx += lsz)
        h_out[idx] = hbuf[(seq & 1) * n + idx];
}

static float8 sigm8(float8 x) { return 1.0f / (1.0f + exp(-x)); }

// lstm_sequence eight cells (j .. j+7 of one batch row; hidden a multiple of 8) to a
// work-item, as float8: PoCL does not vectorize lstm_sequence's work-items, whose scalar
// exp/tanh (five a cell) and 4 x hidden products took ~100 ns a cell (the translator's
// encoder at batch 8: 0.85 ms a direction). The recurrent weights are read transposed
// (`rkt`, hidden x 4*hidden, written once at the start) so that the eight cells' weights
// are one vload8. Each sum still runs over k ascending; exp/tanh are the float8 ones.
__kernel void lstm_sequence8(int seq, int batch, int hidden, int reverse,
                             __global const float *xw, __global const float *rk,
                             __global const float *h0, __global const float *c0,
                             __global const uchar *mask, int masked, __global float *hbuf,
                             __global float *rkt, __global float *y, __global float *h_out,
                             __global float *c_out)
{
    const int n = batch * hidden, gates = 4 * hidden, n8 = n / 8;
    const int lid = get_local_id(0), lsz = get_local_size(0);
    for (int idx = lid; idx < n; idx += lsz) {
        hbuf[idx] = h0[idx];
        c_out[idx] = c0[idx];
    }
    for (int idx = lid; idx < gates * hidden; idx += lsz)  // rkt[k, row] = rk[row, k]
        rkt[idx] = rk[(idx % gates) * hidden + idx / gates];
    barrier(CLK_GLOBAL_MEM_FENCE);
    for (int s = 0; s < seq; s++) {
        const int t = reverse ? seq - 1 - s : s;
        __global const float *h_in = hbuf + (s & 1) * n;
        __global float *h_next = hbuf + ((s + 1) & 1) * n;
        for (int v = lid; v < n8; v += lsz) {
            const int b = v * 8 / hidden, j = v * 8 % hidden;
            __global const float *x = xw + (t * batch + b) * gates + j;
            __global const float *hb = h_in + b * hidden;
            float8 r0 = 0.0f, r1 = 0.0f, r2 = 0.0f, r3 = 0.0f;
            for (int k = 0; k < hidden; k++) {
                const float hk = hb[k];
                __global const float *w = rkt + k * gates + j;
                r0 += hk * vload8(0, w);
                r1 += hk * vload8(0, w + hidden);
                r2 += hk * vload8(0, w + 2 * hidden);
                r3 += hk * vload8(0, w + 3 * hidden);
            }
            const float8 i = sigm8(vload8(0, x) + r0);
            const float8 o = sigm8(vload8(0, x + hidden) + r1);
            const float8 f = sigm8(vload8(0, x + 2 * hidden) + r2);
            const float8 g = tanh(vload8(0, x + 3 * hidden) + r3);
            const float8 c_old = vload8(v, c_out);
            const float8 c = f * c_old + i * g;
            const float8 h = o * tanh(c);
            const bool live = !masked || mask[t * batch + b];
            vstore8(live ? h : (float8)(0.0f), v, y + t * n);
            vstore8(live ? h : vload8(v, h_in), v, h_next);
            vstore8(live ? c : c_old, v, c_out);
        }
        barrier(CLK_GLOBAL_MEM_FENCE);
    }
    for (int idx = lid; idx < n; idx += lsz)
        h_out[idx] = hbuf[(seq & 1) * n + idx];
}
