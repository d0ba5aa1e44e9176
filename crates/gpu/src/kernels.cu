// vigil's device kernels, compiled at run time with NVRTC (and in CI for sm_87 and sm_90).
//
// `letterbox` reproduces the CPU path bit for bit: the same bilinear coefficient tables
// (computed on the host exactly as fast_image_resize computes them), the same 16-bit
// fixed-point arithmetic, the same vertical-then-horizontal order with an 8-bit intermediate
// (recomputed per pixel instead of stored). It also pads, picks channels, normalises
// (y = scale * (x - offset)) and writes NCHW or NHWC, f32 or f16, straight into the
// inference input buffer, in one pass over the frame.

typedef unsigned char u8;
typedef unsigned short u16;

__device__ __forceinline__ u8 clip8(int v, int precision) {
    int s = v >> precision;
    return (u8)(s < 0 ? 0 : (s > 255 ? 255 : s));
}

// The vertical pass's 8-bit value at source column x, inner row iy (or the source pixel
// when the height is unchanged): exactly what the CPU path's intermediate image holds.
__device__ __forceinline__ void vertical_at(
    const u8* __restrict__ src, int src_w, int x, int iy, int vresize,
    const int* __restrict__ starts, const int* __restrict__ sizes,
    const short* __restrict__ coeffs, int window, int precision, int out[3])
{
    if (!vresize) {
        const u8* p = src + ((size_t)iy * src_w + x) * 3;
        out[0] = p[0]; out[1] = p[1]; out[2] = p[2];
        return;
    }
    int start = starts[iy], n = sizes[iy];
    int initial = 1 << (precision - 1);
    int a0 = initial, a1 = initial, a2 = initial;
    for (int k = 0; k < n; k++) {
        int c = coeffs[iy * window + k];
        const u8* p = src + ((size_t)(start + k) * src_w + x) * 3;
        a0 += c * p[0];
        a1 += c * p[1];
        a2 += c * p[2];
    }
    out[0] = clip8(a0, precision);
    out[1] = clip8(a1, precision);
    out[2] = clip8(a2, precision);
}

__device__ __forceinline__ u16 to_half(float v) {
    u16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));
    return h;
}

// Every network pixel in one pass: the vertical then the horizontal resize (computed per
// pixel with the CPU path's integer arithmetic and 8-bit intermediate, so bit-identical to
// it), letterbox padding, channel order, normalisation, layout, precision.
// color: 0 RGB, 1 BGR, 2 GRAY. layout: 0 NCHW, 1 NHWC. half: 0 f32, 1 f16.
extern "C" __global__ void letterbox(
    const u8* __restrict__ src, int src_w,
    int inner_w, int inner_h, int pad_x, int pad_y, int net_w, int net_h,
    const int* __restrict__ vstarts, const int* __restrict__ vsizes,
    const short* __restrict__ vcoeffs, int vwindow, int vprecision, int vresize,
    const int* __restrict__ hstarts, const int* __restrict__ hsizes,
    const short* __restrict__ hcoeffs, int hwindow, int hprecision, int hresize,
    float pad_value, float scale, float off0, float off1, float off2,
    int color, int layout, int half, void* __restrict__ out)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y;
    if (x >= net_w || y >= net_h) return;
    float rgb[3];
    int ix = x - pad_x, iy = y - pad_y;
    if (ix < 0 || iy < 0 || ix >= inner_w || iy >= inner_h) {
        rgb[0] = rgb[1] = rgb[2] = pad_value;
    } else if (!hresize) {
        int p[3];
        vertical_at(src, src_w, ix, iy, vresize, vstarts, vsizes, vcoeffs, vwindow, vprecision, p);
        rgb[0] = p[0]; rgb[1] = p[1]; rgb[2] = p[2];
    } else {
        int start = hstarts[ix], n = hsizes[ix];
        int initial = 1 << (hprecision - 1);
        int a0 = initial, a1 = initial, a2 = initial;
        for (int k = 0; k < n; k++) {
            int c = hcoeffs[ix * hwindow + k];
            int p[3];
            vertical_at(src, src_w, start + k, iy, vresize, vstarts, vsizes, vcoeffs, vwindow, vprecision, p);
            a0 += c * p[0];
            a1 += c * p[1];
            a2 += c * p[2];
        }
        rgb[0] = clip8(a0, hprecision);
        rgb[1] = clip8(a1, hprecision);
        rgb[2] = clip8(a2, hprecision);
    }
    int channels = color == 2 ? 1 : 3;
    float offs[3] = {off0, off1, off2};
    size_t plane = (size_t)net_w * net_h;
    for (int ch = 0; ch < channels; ch++) {
        float v;
        if (ix < 0 || iy < 0 || ix >= inner_w || iy >= inner_h) {
            v = pad_value;
        } else if (color == 2) {
            v = __fadd_rn(__fadd_rn(__fmul_rn(0.299f, rgb[0]), __fmul_rn(0.587f, rgb[1])), __fmul_rn(0.114f, rgb[2]));
        } else {
            v = rgb[color == 1 ? 2 - ch : ch];
        }
        v = __fmul_rn(scale, __fsub_rn(v, offs[ch]));
        size_t i = layout == 0 ? ch * plane + (size_t)y * net_w + x
                               : ((size_t)y * net_w + x) * channels + ch;
        if (half) ((u16*)out)[i] = to_half(v);
        else ((float*)out)[i] = v;
    }
}

// Ultralytics raw output [4+nc, N]: per anchor the best class (first maximum), and the
// candidates scoring at least `threshold` compacted into `cand` (x1, y1, x2, y2, score,
// class, anchor) through an atomic counter (count[0]); anchors holding NaN or inf anywhere
// are counted in count[1] and never candidates. Order is arbitrary; the host sorts by anchor.
extern "C" __global__ void decode_ultralytics(
    const float* __restrict__ raw, int n, int classes, float threshold,
    float* __restrict__ cand, unsigned int* __restrict__ count, unsigned int capacity)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float best = __int_as_float(0xff800000);  // -inf
    int cls = 0;
    bool finite = true;
    for (int k = 0; k < classes; k++) {
        float s = raw[(size_t)(4 + k) * n + i];
        finite = finite && isfinite(s);
        if (s > best) { best = s; cls = k; }
    }
    float cx = raw[i], cy = raw[(size_t)n + i], w = raw[(size_t)2 * n + i], h = raw[(size_t)3 * n + i];
    if (!(finite && isfinite(cx) && isfinite(cy) && isfinite(w) && isfinite(h))) {
        atomicAdd(count + 1, 1u);
        return;
    }
    if (!(best >= threshold)) return;
    float hw = __fdiv_rn(w, 2.0f), hh = __fdiv_rn(h, 2.0f);
    float x1 = __fsub_rn(cx, hw), y1 = __fsub_rn(cy, hh), x2 = __fadd_rn(cx, hw), y2 = __fadd_rn(cy, hh);
    if (!(isfinite(x1) && isfinite(y1) && isfinite(x2) && isfinite(y2)) || x2 < x1 || y2 < y1) return;
    unsigned int slot = atomicAdd(count, 1u);
    if (slot >= capacity) return;
    float* c = cand + (size_t)slot * 7;
    c[0] = x1; c[1] = y1; c[2] = x2; c[3] = y2; c[4] = best; c[5] = (float)cls; c[6] = (float)i;
}

// A deliberate fault: a write through a wild device pointer, the customer's failure
// (cudaErrorIllegalAddress, error 700) made on purpose in the calling process's own context.
// Every later call in that context fails with the same sticky error.
extern "C" __global__ void wild_write(unsigned long long address)
{
    *(volatile unsigned int*)address = 0xdeadbeefu;
}
