// Virtual try-on with OpenCV's dnn module: CP-VTON (Wang et al., ECCV 2018), header-only C++.
//
// The C++ counterpart of virtual_try_on.py: everything between the networks (the 256:192 crop,
// Pillow-exact body-shape blur, pose map, agnostic, TPS grid, border grid sampling, composition)
// computed as the Python module computes it (bit for bit up to the agnostic; the TPS grid, the
// sampling and the composition within 1e-5 of it), so that both give the same 256x192 try-on. The published GMM's custom `Correlation` node is served by a C++ layer
// registered with cv::dnn's LayerFactory (CPU); the standard-op GMM written by
// tools/convert_gmm.py needs no layer at all (any backend). The TOM's person representation comes from
// its ONNX metadata, as in cp_vton.py: CP-VTON's agnostic, or photo-kept (vton::photo_kept, photo_kept.py).
//
//     #include "virtual_try_on.hpp"
//     vton::CpVton model("cp_vton_gmm.onnx", "cp_vton_tom.onnx");
//     cv::Mat result = vton::tryOnPhoto(model, person, cloth,
//                                       vton::readKeypointsJson("person_keypoints.json"),
//                                       vton::readParsing("person_parsing.png"));
//
// Errors: vton::UsageError (bad input, exit status 2 in the sample) and vton::RuntimeFailure
// (damaged or wrong model, no person: exit status 1); OpenCV's own cv::Exception passes through.
// Build with C++17 and, for results equal to the Python ones to the bit, without floating-point
// contraction (-ffp-contract=off; the CMake target `vton` in cpp/CMakeLists.txt sets it).
#ifndef VTON_VIRTUAL_TRY_ON_HPP
#define VTON_VIRTUAL_TRY_ON_HPP

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/dnn/layer.details.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <tuple>
#include <unistd.h>
#include <vector>

namespace vton {

// CP-VTON's fine_height, fine_width and TPS grid; the pose squares' half size
constexpr int kHeight = 256, kWidth = 192, kGridSize = 5, kPoseRadius = 5;
constexpr int kNumKeypoints = 18, kNumLabels = 20;
// LIP classes kept from the person photo in the agnostic: Hat, Hair, Sunglasses, Face, Pants, Skirt
const std::vector<int> kKeptLabels = {1, 2, 4, 13, 9, 12};
const char* const kGmmInputs[2] = {"input.1", "input.18"};  // agnostic (1, 22, H, W), cloth (1, 3, H, W)
const cv::Size kMinSize(kWidth / 4, kHeight / 4);           // smallest person crop / cloth photo

// LIP palette as CP-VTON's PNGs hold it (RGB)
const unsigned char kLipPaletteRgb[kNumLabels][3] = {
    {0, 0, 0}, {128, 0, 0}, {254, 0, 0}, {0, 85, 0}, {169, 0, 51}, {254, 85, 0}, {0, 0, 85},
    {0, 119, 220}, {85, 85, 0}, {0, 85, 85}, {85, 51, 0}, {52, 86, 128}, {0, 128, 0}, {0, 0, 254},
    {51, 169, 220}, {0, 254, 254}, {85, 254, 169}, {169, 254, 85}, {254, 254, 0}, {254, 169, 0}};

struct UsageError : std::runtime_error {  // bad usage or input file: exit status 2
    explicit UsageError(const std::string& what) : std::runtime_error(what) {}
};
struct RuntimeFailure : std::runtime_error {  // fine input, failed work: exit status 1
    explicit RuntimeFailure(const std::string& what) : std::runtime_error(what) {}
};

// ---------------------------------------------------------------------------- geometry
// Centre crop to height / width = ratio (a view of `image`); `box` gets its place in `image`.
// The kept side is whole, the other the integer closest to side * ratio (a 256x192 photo is untouched).
inline cv::Mat cropToRatio(const cv::Mat& image, cv::Rect* box = nullptr,
                           double ratio = double(kHeight) / kWidth) {
    const int height = image.rows, width = image.cols;
    if (height <= 0 || width <= 0) throw UsageError("empty image");
    int w, h;
    if (height > width * ratio) {
        w = width;
        h = std::min(height, int(std::floor(width * ratio + 0.5)));
    } else {
        w = std::min(width, int(std::floor(height / ratio + 0.5)));
        h = height;
    }
    if (w < 1 || h < 1)
        throw UsageError(cv::format("image of %dx%d is too small to crop to %.4g:1", width, height, ratio));
    const cv::Rect rect((width - w) / 2, (height - h) / 2, w, h);
    if (box) *box = rect;
    return image(rect);
}

// ---------------------------------------------------------------------------- Pillow BILINEAR
namespace detail {
constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's Resample.c

struct FilterBand {  // Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis
    int ksize = 0;
    std::vector<int> start, count;  // first input pixel and tap count per output pixel
    std::vector<int> coeffs;        // fixed-point weights, ksize per output pixel
};

inline FilterBand filterBand(int inSize, int outSize) {
    FilterBand band;
    const double scale = double(inSize) / outSize;
    const double filterscale = std::max(scale, 1.0);
    const double support = 1.0 * filterscale;  // bilinear support 1, widened when shrinking
    const double ss = 1.0 / filterscale;
    band.ksize = int(std::ceil(support)) * 2 + 1;
    band.start.resize(outSize);
    band.count.resize(outSize);
    band.coeffs.assign(size_t(outSize) * band.ksize, 0);
    std::vector<double> weights(band.ksize);
    for (int xx = 0; xx < outSize; xx++) {
        const double center = (xx + 0.5) * scale;
        int xmin = int(center - support + 0.5);  // C truncation, as Pillow
        if (xmin < 0) xmin = 0;
        int xmax = int(center + support + 0.5);
        if (xmax > inSize) xmax = inSize;
        xmax -= xmin;
        double total = 0.0;
        for (int x = 0; x < xmax; x++) {
            double d = (double(x + xmin) - center + 0.5) * ss;
            d = d < 0 ? -d : d;
            weights[x] = d < 1.0 ? 1.0 - d : 0.0;
            total += weights[x];  // sequential sum, as Pillow
        }
        for (int x = 0; x < xmax; x++) {
            const double w = total != 0.0 ? weights[x] / total : weights[x];
            band.coeffs[size_t(xx) * band.ksize + x] =
                w < 0 ? int(-0.5 + w * (1 << kPrecisionBits)) : int(0.5 + w * (1 << kPrecisionBits));
        }
        band.start[xx] = xmin;
        band.count[xx] = xmax;
    }
    return band;
}

inline uchar clip8(int sum) {  // Pillow's clip8: >> 22 (floor), clipped to 0..255
    const int v = sum >> kPrecisionBits;
    return uchar(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Resample along x: rows [rowBegin, rowEnd) of src -> dst (rowEnd - rowBegin rows, outWidth columns)
inline cv::Mat horizontalPass(const cv::Mat& src, int rowBegin, int rowEnd, int outWidth) {
    const int cn = src.channels();
    const FilterBand band = filterBand(src.cols, outWidth);
    cv::Mat dst(rowEnd - rowBegin, outWidth, src.type());
    for (int y = rowBegin; y < rowEnd; y++) {
        const uchar* in = src.ptr<uchar>(y);
        uchar* out = dst.ptr<uchar>(y - rowBegin);
        for (int xx = 0; xx < outWidth; xx++) {
            const int* k = &band.coeffs[size_t(xx) * band.ksize];
            const uchar* p = in + size_t(band.start[xx]) * cn;
            for (int c = 0; c < cn; c++) {
                int sum = 1 << (kPrecisionBits - 1);
                for (int x = 0; x < band.count[xx]; x++) sum += p[x * cn + c] * k[x];
                out[xx * cn + c] = clip8(sum);
            }
        }
    }
    return dst;
}

// Resample along y: src holds input rows [offset, offset + src.rows) of an image inSize high
inline cv::Mat verticalPass(const cv::Mat& src, int inSize, int offset, int outHeight) {
    const int rowLength = src.cols * src.channels();
    const FilterBand band = filterBand(inSize, outHeight);
    cv::Mat dst(outHeight, src.cols, src.type());
    std::vector<int> sums(rowLength);
    for (int yy = 0; yy < outHeight; yy++) {
        std::fill(sums.begin(), sums.end(), 1 << (kPrecisionBits - 1));
        const int* k = &band.coeffs[size_t(yy) * band.ksize];
        for (int y = 0; y < band.count[yy]; y++) {
            const uchar* in = src.ptr<uchar>(band.start[yy] + y - offset);
            const int weight = k[y];
            for (int i = 0; i < rowLength; i++) sums[i] += in[i] * weight;
        }
        uchar* out = dst.ptr<uchar>(yy);
        for (int i = 0; i < rowLength; i++) out[i] = clip8(sums[i]);
    }
    return dst;
}
}  // namespace detail

// Pillow >= 13 runs the vertical pass first when the height drops by more than twice as many pixels as
// the width does; Pillow <= 12 always starts with the horizontal pass (pil_bilinear.vertical_pass_first).
inline bool verticalPassFirst(cv::Size in, cv::Size out, int pillowMajor = 13) {
    if (pillowMajor < 13) return false;
    const int heightDrop = in.height - out.height;
    return heightDrop > 0 && heightDrop > 2 * (in.width - out.width) && out.width != in.width;
}

// Image.fromarray(src).resize(size, Image.BILINEAR), bit for bit: CV_8U with 1 to 4 channels
// (2 = Pillow's "LA" and 4 = "RGBA", resampled with premultiplied alpha as Pillow does), any sizes.
// pillowMajor picks the pass order of that Pillow version (13: the current one).
inline cv::Mat pilBilinearResize(const cv::Mat& src, cv::Size size, int pillowMajor = 13) {
    if (src.depth() != CV_8U || src.channels() < 1 || src.channels() > 4 || src.dims != 2)
        throw std::invalid_argument("pilBilinearResize: image must be 2-D CV_8U with 1 to 4 channels");
    if (src.empty()) throw std::invalid_argument("pilBilinearResize: image is empty");
    if (size.width < 1 || size.height < 1)
        throw std::invalid_argument("pilBilinearResize: size must be at least 1x1");
    if (size == src.size()) return src.clone();  // Pillow copies an unchanged size
    const int cn = src.channels();
    const bool hasAlpha = cn == 2 || cn == 4;
    cv::Mat pixels = src;
    if (hasAlpha) {  // "RGBa" / "La": MULDIV255(colour, alpha)
        pixels = src.clone();
        for (int y = 0; y < pixels.rows; y++) {
            uchar* p = pixels.ptr<uchar>(y);
            for (int x = 0; x < pixels.cols; x++, p += cn)
                for (int c = 0; c < cn - 1; c++) {
                    const unsigned t = unsigned(p[c]) * p[cn - 1] + 128;
                    p[c] = uchar(((t >> 8) + t) >> 8);
                }
        }
    }
    const bool needHorizontal = size.width != src.cols, needVertical = size.height != src.rows;
    cv::Mat result;
    if (verticalPassFirst(src.size(), size, pillowMajor)) {
        cv::Mat rows = detail::verticalPass(pixels, src.rows, 0, size.height);
        result = detail::horizontalPass(rows, 0, rows.rows, size.width);
    } else {
        int first = 0, last = src.rows;
        if (needVertical) {  // the horizontal pass only resamples the rows the vertical one reads
            const detail::FilterBand band = detail::filterBand(src.rows, size.height);
            first = band.start.front();
            last = band.start.back() + band.count.back();
        }
        cv::Mat rows = needHorizontal ? detail::horizontalPass(pixels, first, last, size.width)
                                      : pixels.rowRange(first, last);
        result = needVertical ? detail::verticalPass(rows, src.rows, first, size.height) : rows.clone();
    }
    if (hasAlpha) {  // back to "RGBA" / "LA": 255 * colour / alpha, truncated; alpha 0 and 255 kept
        for (int y = 0; y < result.rows; y++) {
            uchar* p = result.ptr<uchar>(y);
            for (int x = 0; x < result.cols; x++, p += cn) {
                const int alpha = p[cn - 1];
                if (alpha == 0 || alpha == 255) continue;
                for (int c = 0; c < cn - 1; c++) p[c] = uchar(std::min(255 * p[c] / alpha, 255));
            }
        }
    }
    return result;
}

// ---------------------------------------------------------------------------- pose map
// keypoints: 18x3 CV_32F (x, y, confidence) in model pixels -> 3-D Mat {18, height, width} CV_32F,
// +1 on the square [int(x - r), int(x + r)] x [int(y - r), int(y + r)] (PIL's rectangle: truncated,
// inclusive, clipped), -1 elsewhere. A missing point (confidence 0, x <= 1 or y <= 1) stays -1.
inline void poseMap(const cv::Mat& keypoints, cv::Mat& maps, int height = kHeight, int width = kWidth,
                    int radius = kPoseRadius) {
    CV_Assert(keypoints.type() == CV_32F && keypoints.cols == 3);
    const int n = keypoints.rows;
    const int sizes[3] = {n, height, width};
    maps.create(3, sizes, CV_32F);  // kept when it already has this shape: no page faults per call
    CV_Assert(maps.isContinuous());
    maps.setTo(-1.0f);
    for (int k = 0; k < n; k++) {
        const double x = keypoints.at<float>(k, 0), y = keypoints.at<float>(k, 1);
        if (!(keypoints.at<float>(k, 2) > 0 && x > 1 && y > 1)) continue;
        const int x0 = std::max(int(std::trunc(x - radius)), 0);
        const int y0 = std::max(int(std::trunc(y - radius)), 0);
        const int x1 = std::min(int(std::trunc(x + radius)), width - 1);
        const int y1 = std::min(int(std::trunc(y + radius)), height - 1);
        cv::Mat plane(height, width, CV_32F, maps.ptr<float>(k));
        if (x0 <= x1 && y0 <= y1) plane(cv::Range(y0, y1 + 1), cv::Range(x0, x1 + 1)).setTo(1.0f);
    }
}

inline cv::Mat poseMap(const cv::Mat& keypoints, int height = kHeight, int width = kWidth, int radius = kPoseRadius) {
    cv::Mat maps;
    poseMap(keypoints, maps, height, width, radius);
    return maps;
}

// ---------------------------------------------------------------------------- TPS grid and warp
namespace detail {
// M (H*W x K, float32) with x' = M * Q for the K = gridSize^2 control points of CP-VTON's TpsGridGen,
// computed in double once per size (as virtual_try_on._tps_basis), then the control points (2 x K).
struct TpsBasis {
    cv::Mat basis, control;
};

inline std::vector<double> linspace(double start, double stop, int num) {  // numpy.linspace
    std::vector<double> v(num);
    const double step = num > 1 ? (stop - start) / (num - 1) : 0.0;
    for (int i = 0; i < num; i++) v[i] = i * step + start;
    if (num > 1) v[num - 1] = stop;
    return v;
}

inline double tpsKernel(double d2) { return d2 == 0 ? 0.0 : d2 * std::log(d2); }  // U(r^2) = r^2 log r^2

inline TpsBasis computeTpsBasis(int height, int width, int gridSize) {
    const std::vector<double> axis = linspace(-1, 1, gridSize);
    const int n = gridSize * gridSize;
    std::vector<double> cx(n), cy(n);
    for (int k = 0; k < n; k++) {  // point k at x = axis[k / g], y = axis[k % g]
        cx[k] = axis[k / gridSize];
        cy[k] = axis[k % gridSize];
    }
    cv::Mat system = cv::Mat::zeros(n + 3, n + 3, CV_64F);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++)
            system.at<double>(i, j) = tpsKernel((cx[i] - cx[j]) * (cx[i] - cx[j]) + (cy[i] - cy[j]) * (cy[i] - cy[j]));
        const double p[3] = {1.0, cx[i], cy[i]};
        for (int j = 0; j < 3; j++) system.at<double>(i, n + j) = system.at<double>(n + j, i) = p[j];
    }
    cv::Mat inverse;
    cv::invert(system, inverse, cv::DECOMP_LU);
    const std::vector<double> gx = linspace(-1, 1, width), gy = linspace(-1, 1, height);
    TpsBasis result;
    result.basis.create(n, height * width, CV_32F);  // transposed: one row per control point
    std::vector<double> u(n), row(n);
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
            for (int k = 0; k < n; k++)
                u[k] = tpsKernel((gx[x] - cx[k]) * (gx[x] - cx[k]) + (gy[y] - cy[k]) * (gy[y] - cy[k]));
            for (int k = 0; k < n; k++) {
                double sum = 0.0;
                for (int i = 0; i < n; i++) sum += u[i] * inverse.at<double>(i, k);
                double affine = inverse.at<double>(n, k) + gx[x] * inverse.at<double>(n + 1, k) +
                                gy[y] * inverse.at<double>(n + 2, k);
                result.basis.at<float>(k, y * width + x) = float(sum + affine);
            }
        }
    result.control.create(2, n, CV_32F);
    for (int k = 0; k < n; k++) {
        result.control.at<float>(0, k) = float(cx[k]);
        result.control.at<float>(1, k) = float(cy[k]);
    }
    return result;
}

// gx += m * px, gy += m * py over n pixels, each a fused multiply-add rounded once to float
inline void tpsAccumulatePortable(const float* m, float px, float py, float* gx, float* gy, int n) {
    // product and sum exact in double, one rounding to float (equal to fmaf but in vanishingly rare ties)
    for (int p = 0; p < n; p++) {
        gx[p] = float(double(gx[p]) + double(m[p]) * px);
        gy[p] = float(double(gy[p]) + double(m[p]) * py);
    }
}

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define VTON_HAVE_FMA_DISPATCH 1
__attribute__((target("avx2,fma"))) inline void tpsAccumulateFma(const float* m, float px, float py, float* gx,
                                                                  float* gy, int n) {
    for (int p = 0; p < n; p++) {  // vectorised into vfmadd by the compiler
        gx[p] = __builtin_fmaf(m[p], px, gx[p]);
        gy[p] = __builtin_fmaf(m[p], py, gy[p]);
    }
}
#endif

inline void tpsAccumulate(const float* m, float px, float py, float* gx, float* gy, int n) {
#ifdef VTON_HAVE_FMA_DISPATCH
    static const bool fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (fma) return tpsAccumulateFma(m, px, py, gx, gy, n);
#endif
    tpsAccumulatePortable(m, px, py, gx, gy, n);
}

inline const TpsBasis& tpsBasis(int height, int width, int gridSize) {
    static std::mutex lock;
    static std::map<std::tuple<int, int, int>, TpsBasis> cache;
    std::lock_guard<std::mutex> guard(lock);
    const auto key = std::make_tuple(height, width, gridSize);
    auto found = cache.find(key);
    if (found == cache.end()) found = cache.emplace(key, computeTpsBasis(height, width, gridSize)).first;
    return found->second;
}
}  // namespace detail

// CP-VTON's TpsGridGen: theta (N x 2K CV_32F: K x offsets then K y offsets) -> 4-D grid {N, H, W, 2}
// of (x, y) in [-1, 1]. The grid is linear in theta: one product with a basis cached per size.
inline void tpsGrid(const cv::Mat& theta, cv::Mat& grid, int height = kHeight, int width = kWidth,
                    int gridSize = kGridSize) {
    const int k = gridSize * gridSize;
    CV_Assert(theta.type() == CV_32F && theta.total() % (2 * k) == 0 && theta.isContinuous());
    const int batch = int(theta.total() / (2 * k));
    const detail::TpsBasis& tps = detail::tpsBasis(height, width, gridSize);
    const int sizes[4] = {batch, height, width, 2};
    grid.create(4, sizes, CV_32F);
    CV_Assert(grid.isContinuous());
    const int count = height * width;
    constexpr int kBlock = 512;  // pixels per block: the accumulators stay in L1
    float points[2 * 64 * 64], gx[kBlock], gy[kBlock];
    CV_Assert(k <= 64 * 64);
    for (int b = 0; b < batch; b++) {
        const float* t = theta.ptr<float>() + size_t(b) * 2 * k;
        for (int i = 0; i < 2 * k; i++) points[i] = t[i] + tps.control.ptr<float>()[i];
        float* out = grid.ptr<float>() + size_t(b) * count * 2;
        for (int begin = 0; begin < count; begin += kBlock) {
            const int n = std::min(kBlock, count - begin);
            std::fill(gx, gx + n, 0.0f);
            std::fill(gy, gy + n, 0.0f);
            // float accumulation in control-point order, each step a fused multiply-add; the Python
            // module's einsum rounds otherwise: the two grids agree within 1e-5
            for (int i = 0; i < k; i++)
                detail::tpsAccumulate(tps.basis.ptr<float>(i) + begin, points[i], points[k + i], gx, gy, n);
            for (int p = 0; p < n; p++) {
                out[2 * (begin + p)] = gx[p];
                out[2 * (begin + p) + 1] = gy[p];
            }
        }
    }
}

inline cv::Mat tpsGrid(const cv::Mat& theta, int height = kHeight, int width = kWidth, int gridSize = kGridSize) {
    cv::Mat grid;
    tpsGrid(theta, grid, height, width, gridSize);
    return grid;
}

// torch.nn.functional.grid_sample(image, grid, bilinear, padding_mode='border', align_corners=True),
// PyTorch 0.4's behaviour: image {N, C, H, W} CV_32F, grid {N, Ho, Wo, 2} -> {N, C, Ho, Wo}.
// The coordinates as virtual_try_on.grid_sample computes them (float32); the interpolation here is in
// float64, there in float32 as in PyTorch: within 1e-5 of each other.
namespace detail {
// One block of grid_sample: the neighbours' offsets and weights of n output pixels (float32
// coordinates, float64 weights), then each channel.
template <int kBlock>
inline void gridSampleBlockPortable(const float* g, int n, const float* src, int c, int h, int w, float* dst,
                                    size_t dstChannelStep) {
    int offsets[kBlock];
    double fxs[kBlock], fys[kBlock];
    const float scaleX = float(0.5 * (w - 1)), scaleY = float(0.5 * (h - 1));
    const int lastX = std::max(w - 2, 0), lastY = std::max(h - 2, 0);
    for (int p = 0; p < n; p++) {
        // align_corners=True: -1 and 1 are the corner pixels' centres; border padding: clamp
        const float x = std::min(std::max((g[2 * p] + 1.0f) * scaleX, 0.0f), float(w - 1));
        const float y = std::min(std::max((g[2 * p + 1] + 1.0f) * scaleY, 0.0f), float(h - 1));
        // left/top neighbour one short of the last pixel, whose weight is then exactly 1
        const int x0 = std::min(int(x), lastX), y0 = std::min(int(y), lastY);
        fxs[p] = double(x) - x0;
        fys[p] = double(y) - y0;
        offsets[p] = y0 * w + x0;
    }
    const int stepX = w > 1 ? 1 : 0, stepY = h > 1 ? w : 0;
    for (int ch = 0; ch < c; ch++, src += size_t(h) * w, dst += dstChannelStep)
        for (int p = 0; p < n; p++) {
            const float* q = src + offsets[p];
            const float a = q[0], b = q[stepX], c0 = q[stepY], d = q[stepY + stepX];
            const double top = double(a) + double(b - a) * fxs[p];
            const double bottom = double(c0) + double(d - c0) * fxs[p];
            dst[p] = float(top + (bottom - top) * fys[p]);
        }
}

#ifdef VTON_HAVE_FMA_DISPATCH
// the same code built for AVX2 (gathers; no FMA, so the arithmetic is unchanged)
template <int kBlock>
__attribute__((target("avx2"))) inline void gridSampleBlockAvx2(const float* g, int n, const float* src, int c,
                                                                 int h, int w, float* dst, size_t dstChannelStep) {
    gridSampleBlockPortable<kBlock>(g, n, src, c, h, w, dst, dstChannelStep);
}
#endif
}  // namespace detail

inline void gridSample(const cv::Mat& image, const cv::Mat& grid, cv::Mat& out) {
    CV_Assert(image.dims == 4 && image.type() == CV_32F && grid.dims == 4 && grid.type() == CV_32F);
    CV_Assert(grid.size[0] == image.size[0] && grid.size[3] == 2 && image.isContinuous() && grid.isContinuous());
    const int n = image.size[0], c = image.size[1], h = image.size[2], w = image.size[3];
    const int outH = grid.size[1], outW = grid.size[2], count = outH * outW;
    const int sizes[4] = {n, c, outH, outW};
    CV_Assert(out.data != image.data);
    out.create(4, sizes, CV_32F);
    CV_Assert(out.isContinuous());
    constexpr int kBlock = 256;
#ifdef VTON_HAVE_FMA_DISPATCH
    static const bool avx2 = __builtin_cpu_supports("avx2");
#else
    const bool avx2 = false;
#endif
    for (int b = 0; b < n; b++) {
        const float* g = grid.ptr<float>() + size_t(b) * count * 2;
        const float* src = image.ptr<float>() + size_t(b) * c * h * w;
        float* dst = out.ptr<float>() + size_t(b) * c * count;
        for (int begin = 0; begin < count; begin += kBlock) {
            const int m = std::min(kBlock, count - begin);
#ifdef VTON_HAVE_FMA_DISPATCH
            if (avx2) {
                detail::gridSampleBlockAvx2<kBlock>(g + 2 * begin, m, src, c, h, w, dst + begin, count);
                continue;
            }
#endif
            (void)avx2;
            detail::gridSampleBlockPortable<kBlock>(g + 2 * begin, m, src, c, h, w, dst + begin, count);
        }
    }
}

inline cv::Mat gridSample(const cv::Mat& image, const cv::Mat& grid) {
    cv::Mat out;
    gridSample(image, grid, out);
    return out;
}

// ---------------------------------------------------------------------------- tensors
namespace detail {
inline const float* unitRangeTable() {  // ToTensor + Normalize(0.5, 0.5) of each 8-bit value
    static const std::vector<float> table = [] {
        std::vector<float> t(256);
        for (int v = 0; v < 256; v++) t[v] = (float(v) / 255.0f - 0.5f) / 0.5f;
        return t;
    }();
    return table.data();
}
}  // namespace detail

// BGR CV_8UC3 (H x W) -> RGB blob {1, 3, H, W} CV_32F in [-1, 1]
inline void toUnitRange(const cv::Mat& bgr, cv::Mat& blob) {
    CV_Assert(bgr.type() == CV_8UC3);
    const int sizes[4] = {1, 3, bgr.rows, bgr.cols};
    blob.create(4, sizes, CV_32F);
    CV_Assert(blob.isContinuous());
    const float* table = detail::unitRangeTable();
    const size_t plane = size_t(bgr.rows) * bgr.cols;
    float* r = blob.ptr<float>();
    float *g = r + plane, *b = g + plane;
    for (int y = 0; y < bgr.rows; y++) {
        const uchar* p = bgr.ptr<uchar>(y);
        for (int x = 0; x < bgr.cols; x++, p += 3, r++, g++, b++) {
            *b = table[p[0]];
            *g = table[p[1]];
            *r = table[p[2]];
        }
    }
}

inline cv::Mat toUnitRange(const cv::Mat& bgr) {
    cv::Mat blob;
    toUnitRange(bgr, blob);
    return blob;
}

// RGB planes in [-1, 1] (3 x H x W floats) -> BGR CV_8UC3, as CP-VTON saves: (x + 1) / 2 * 255, clamped, truncated
inline cv::Mat toImage(const float* rgb, int height, int width) {
    cv::Mat image(height, width, CV_8UC3);
    const size_t plane = size_t(height) * width;
    for (int y = 0; y < height; y++) {
        uchar* p = image.ptr<uchar>(y);
        for (int x = 0; x < width; x++, p += 3)
            for (int c = 0; c < 3; c++) {
                const float v = (rgb[c * plane + size_t(y) * width + x] + 1.0f) * 0.5f * 255.0f;
                p[2 - c] = uchar(std::min(std::max(v, 0.0f), 255.0f));
            }
    }
    return image;
}

// Resize a BGR image to 192x256 (area when shrinking, linear when enlarging); no-op at that size
inline cv::Mat resizeToModel(const cv::Mat& image) {
    if (image.rows == kHeight && image.cols == kWidth) return image;
    cv::Mat out;
    cv::resize(image, out, cv::Size(kWidth, kHeight), 0, 0, image.rows > kHeight ? cv::INTER_AREA : cv::INTER_LINEAR);
    return out;
}

// ---------------------------------------------------------------------------- Correlation layer
// The published GMM's custom node: FeatureCorrelation(A, B), A and B {b, c, h, w} ->
// {b, w*h, h, w} with out[n, jj*h + ii, i, j] = sum_c A[n, c, ii, jj] * B[n, c, i, j].
class CorrelationLayer : public cv::dnn::Layer {
public:
    explicit CorrelationLayer(const cv::dnn::LayerParams& params) { setParamsFrom(params); }
    static cv::Ptr<cv::dnn::Layer> create(cv::dnn::LayerParams& params) {
        return cv::Ptr<cv::dnn::Layer>(new CorrelationLayer(params));
    }
    bool getMemoryShapes(const std::vector<cv::dnn::MatShape>& inputs, const int,
                         std::vector<cv::dnn::MatShape>& outputs, std::vector<cv::dnn::MatShape>&) const override {
        CV_Assert(inputs.size() == 2 && inputs[0].size() == 4 && inputs[0] == inputs[1]);
        const int b = inputs[0][0], h = inputs[0][2], w = inputs[0][3];
        outputs.assign(1, cv::dnn::MatShape{b, h * w, h, w});
        return false;
    }
    void forward(cv::InputArrayOfArrays inputsArr, cv::OutputArrayOfArrays outputsArr,
                 cv::OutputArrayOfArrays) override {
        std::vector<cv::Mat> inputs, outputs;
        inputsArr.getMatVector(inputs);
        outputsArr.getMatVector(outputs);
        const int b = inputs[0].size[0], c = inputs[0].size[1], h = inputs[0].size[2], w = inputs[0].size[3];
        const int hw = h * w;
        cv::Mat product;
        for (int n = 0; n < b; n++) {
            const cv::Mat a(c, hw, CV_32F, inputs[0].ptr<float>(n)), bb(c, hw, CV_32F, inputs[1].ptr<float>(n));
            cv::gemm(a, bb, 1.0, cv::noArray(), 0.0, product, cv::GEMM_1_T);  // (ii*w + jj, i*w + j)
            float* out = outputs[0].ptr<float>(n);
            for (int ii = 0; ii < h; ii++)
                for (int jj = 0; jj < w; jj++)
                    std::memcpy(out + size_t(jj * h + ii) * hw, product.ptr<float>(ii * w + jj), hw * sizeof(float));
        }
    }
};

// Register "Correlation" with cv::dnn (idempotent); CpVton does it before reading a GMM.
inline void registerCorrelationLayer() {
    static std::once_flag once;
    std::call_once(once, [] { cv::dnn::LayerFactory::registerLayer("Correlation", CorrelationLayer::create); });
}

// ---------------------------------------------------------------------------- ONNX file facts
namespace detail {
// A few facts read from an ONNX file's protobuf wire format (no protobuf library needed): its graph
// inputs that are not initializers with their dims (0 where symbolic or unknown, as onnx_facts.py), its
// metadata, and whether that metadata marks it synthetic.
struct OnnxFacts {
    std::vector<std::string> inputs;
    std::vector<std::vector<int64_t>> inputDims;  // one per entry of inputs
    std::map<std::string, std::string> metadata;
    bool synthetic = false, hasGraph = false;
};

struct WireReader {
    const uchar *p, *end;
    bool ok = true;
    uint64_t value = 0;  // the last varint field's value
    uint64_t varint() {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (p >= end) break;
            const uchar byte = *p++;
            v |= uint64_t(byte & 0x7f) << shift;
            if (!(byte & 0x80)) return v;
        }
        ok = false;
        return 0;
    }
    // next field: number and, for length-delimited ones, the payload; false at the end or on damage
    bool next(int& field, const uchar*& data, size_t& size) {
        if (!ok || p >= end) return false;
        const uint64_t key = varint();
        field = int(key >> 3);
        data = nullptr;
        size = 0;
        switch (key & 7) {
            case 0: value = varint(); break;
            case 1: if (end - p < 8) ok = false; else p += 8; break;
            case 5: if (end - p < 4) ok = false; else p += 4; break;
            case 2: {
                const uint64_t length = varint();
                if (!ok || length > uint64_t(end - p)) { ok = false; break; }
                data = p;
                size = size_t(length);
                p += length;
                break;
            }
            default: ok = false;
        }
        return ok && field > 0;
    }
};

inline std::string stringField(const uchar* data, size_t size, int wanted) {
    WireReader r{data, data + size};
    int field;
    const uchar* d;
    size_t n;
    while (r.next(field, d, n))
        if (field == wanted && d) return std::string(reinterpret_cast<const char*>(d), n);
    return std::string();
}

// The dims of an onnx ValueInfoProto (type.tensor_type.shape.dim[].dim_value), 0 where a dim is symbolic
inline std::vector<int64_t> valueInfoDims(const uchar* data, size_t size) {
    std::vector<int64_t> dims;
    WireReader info{data, data + size};
    int field;
    const uchar* d;
    size_t n;
    while (info.next(field, d, n)) {
        if (field != 2 || !d) continue;  // TypeProto
        WireReader type{d, d + n};
        while (type.next(field, d, n)) {
            if (field != 1 || !d) continue;  // tensor_type
            WireReader tensor{d, d + n};
            while (tensor.next(field, d, n)) {
                if (field != 2 || !d) continue;  // shape
                WireReader shape{d, d + n};
                while (shape.next(field, d, n)) {
                    if (field != 1 || !d) continue;  // dim
                    WireReader dim{d, d + n};
                    int64_t v = 0;
                    int f;
                    const uchar* dd;
                    size_t nn;
                    while (dim.next(f, dd, nn))
                        if (f == 1 && !dd) {  // dim_value
                            v = int64_t(dim.value);
                            break;
                        }
                    dims.push_back(v);
                }
            }
        }
    }
    return dims;
}

inline bool readOnnxFacts(const std::vector<uchar>& bytes, OnnxFacts& facts) {
    WireReader model{bytes.data(), bytes.data() + bytes.size()};
    int field;
    const uchar* data;
    size_t size;
    while (model.next(field, data, size)) {
        if (field == 7 && data) {  // ModelProto.graph
            facts.hasGraph = true;
            std::vector<std::string> inputs;
            std::vector<std::vector<int64_t>> dims;
            std::set<std::string> initializers;
            WireReader graph{data, data + size};
            int gf;
            const uchar* gd;
            size_t gs;
            while (graph.next(gf, gd, gs)) {
                if (gf == 11 && gd) {  // GraphProto.input
                    inputs.push_back(stringField(gd, gs, 1));
                    dims.push_back(valueInfoDims(gd, gs));
                }
                else if (gf == 5 && gd) initializers.insert(stringField(gd, gs, 8));  // .initializer name
            }
            if (!graph.ok) return false;
            for (size_t i = 0; i < inputs.size(); i++)
                if (!initializers.count(inputs[i])) {
                    facts.inputs.push_back(inputs[i]);
                    facts.inputDims.push_back(dims[i]);
                }
        } else if (field == 14 && data) {  // ModelProto.metadata_props
            const std::string key = stringField(data, size, 1);
            std::string value = stringField(data, size, 2);
            facts.metadata[key] = value;  // the last entry of a key wins, as in onnx_facts.py
            std::transform(value.begin(), value.end(), value.begin(), ::tolower);
            if (key == "synthetic" && value == "true") facts.synthetic = true;
        }
    }
    return model.ok && model.p == model.end;
}

inline std::vector<uchar> readFileBytes(const std::string& path, const std::string& what) {
    struct stat info;
    if (::stat(path.c_str(), &info) != 0) throw UsageError(what + " file not found: " + path);
    if (S_ISDIR(info.st_mode)) throw UsageError(what + " path is a directory: " + path);
    std::ifstream file(path, std::ios::binary);
    if (!file) throw UsageError("cannot read " + what + " " + path + ": " + std::strerror(errno));
    std::vector<uchar> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    if (file.bad()) throw UsageError("cannot read " + what + " " + path);
    return bytes;
}

inline std::string joined(const std::vector<std::string>& names) {
    std::string out;
    for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
    return out;
}
}  // namespace detail

// ---------------------------------------------------------------------------- the try-on networks
// CP-VTON's cloth-agnostic person representation: labels (256x192 CV_8U LIP classes), person
// (BGR CV_8UC3 256x192), pose (poseMap) -> agnostic {1, 22, 256, 192} CV_32F: blurred body shape,
// kept regions (keptLabels) of the person, pose
inline void prepareAgnostic(const cv::Mat& labels, const cv::Mat& person, const cv::Mat& pose, cv::Mat& agnostic,
                            const std::vector<int>& keptLabels = kKeptLabels) {
    bool headLut[256] = {};
    for (int label : keptLabels) {
        CV_Assert(label >= 0 && label < 256);
        headLut[label] = true;
    }
    if (labels.size() != cv::Size(kWidth, kHeight) || person.size() != cv::Size(kWidth, kHeight) ||
        labels.type() != CV_8U || person.type() != CV_8UC3)
        throw std::invalid_argument("labels (CV_8U) and person (CV_8UC3) must be 192x256");
    CV_Assert(pose.dims == 3 && pose.size[0] == kNumKeypoints && pose.size[1] == kHeight && pose.size[2] == kWidth);
    const int plane = kHeight * kWidth;
    const int sizes[4] = {1, 3 + 1 + kNumKeypoints, kHeight, kWidth};
    agnostic.create(4, sizes, CV_32F);  // kept when it has this shape (it may be a view into a larger blob)
    CV_Assert(agnostic.isContinuous());
    float* out = agnostic.ptr<float>();
    // body shape: Pillow BILINEAR down by 16 and back up, then to [-1, 1]
    cv::Mat shape = labels > 0;
    shape = pilBilinearResize(pilBilinearResize(shape, cv::Size(kWidth / 16, kHeight / 16)), cv::Size(kWidth, kHeight));
    const float* table = detail::unitRangeTable();
    for (int y = 0; y < kHeight; y++) {
        const uchar* s = shape.ptr<uchar>(y);
        for (int x = 0; x < kWidth; x++) out[y * kWidth + x] = table[s[x]];
    }
    // kept regions (head, ...) of the person in RGB, -1 elsewhere
    float *r = out + plane, *g = r + plane, *b = g + plane;
    for (int y = 0; y < kHeight; y++) {
        const uchar* l = labels.ptr<uchar>(y);
        const uchar* p = person.ptr<uchar>(y);
        for (int x = 0; x < kWidth; x++, p += 3, r++, g++, b++) {
            const bool kept = headLut[l[x]];
            *r = kept ? table[p[2]] : -1.0f;
            *g = kept ? table[p[1]] : -1.0f;
            *b = kept ? table[p[0]] : -1.0f;
        }
    }
    if (pose.ptr<float>() != out + 4 * plane)  // CpVton::inferFromKeypoints draws it in place
        std::memcpy(out + 4 * plane, pose.ptr<float>(), sizeof(float) * plane * kNumKeypoints);
}

inline cv::Mat prepareAgnostic(const cv::Mat& labels, const cv::Mat& person, const cv::Mat& pose,
                               const std::vector<int>& keptLabels = kKeptLabels) {
    cv::Mat agnostic;
    prepareAgnostic(labels, person, pose, agnostic, keptLabels);
    return agnostic;
}

// ---------------------------------------------------------------------------- photo-kept representation
// The person representation of our own TOM (photo_kept.py). CP-VTON's TOM sees only the head and the lower
// body and repaints the whole upper body, so bare arms, hands and background come back as a blur; ours sees
// the photo except a hole over whatever a new upper garment might cover (the old garment and the arms
// dilated, the torso and arm capsules along the pose), with the hands kept, and also outputs the new
// garment's coverage: the result changes only where the old garment was or the new one lies (paintMask).
// The TOM's ONNX metadata key kRepresentationKey names its representation; a TOM without it is CP-VTON's
// (25 -> 4 channels); a photo-kept TOM takes 30 (personTensor's 26, the warped cloth and the warped cloth's
// mask) and gives 5 (rendered before tanh, composition mask and coverage before sigmoid).
const char* const kRepresentationKey = "person_representation";
const char* const kCpVtonRepresentation = "cp-vton";
const char* const kPhotoKeptRepresentation = "photo-kept";

namespace photo_kept {
constexpr int kPersonChannels = 26;                // agnostic (22) + kept photo (3) + hole (1)
constexpr int kTomChannels = kPersonChannels + 4;  // + warped cloth (3) + its mask (1)
// LIP classes: the garment a try-on replaces (upper clothes, dress, coat), the arms, the head (hat, hair,
// sunglasses, face: never repainted)
const std::vector<int> kGarmentLabels = {5, 6, 7}, kArmLabels = {14, 15}, kHeadLabels = {1, 2, 4, 13};
constexpr int kFaceLabel = 13;
// the hole's geometry, relative to the shoulder width in the 256x192 frame (78 px on VITON's median person)
constexpr int kHoleDilation = 5;       // model pixels the old garment and arms are dilated by
constexpr double kArmThickness = 0.4;  // of the shoulder width: the arm capsules along shoulder-elbow-wrist
constexpr double kHandRadius = 0.15;   // of the shoulder width: the disc around a wrist whose arm pixels stay
constexpr double kTorsoLength = 1.5;   // of the shoulder width: neck to hips when the hips are out of frame

namespace detail {
enum Part { kNeck = 1, kRShoulder = 2, kRElbow = 3, kRWrist = 4, kLShoulder = 5, kLElbow = 6, kLWrist = 7,
            kRHip = 8, kLHip = 11 };  // coco_parts.PART_INDEX

struct Point {  // a keypoint as photo_kept._point gives it: found or not, float32 coordinates as doubles
    bool found = false;
    double x = 0, y = 0;
};

inline Point point(const cv::Mat& keypoints, int k) {
    const float* p = keypoints.ptr<float>(k);
    Point result;
    if (p[2] > 0) result = Point{true, double(p[0]), double(p[1])};
    return result;
}

// Python's int(round(v)): half to even (the default rounding mode), bounded so that absurd keypoints
// stay defined behaviour (the drawing clips them anyway)
inline int roundToInt(double v) {
    return int(std::nearbyint(std::min(std::max(v, -1e9), 1e9)));
}

// (H, W) CV_8U 1 where the label is one of `set`, else 0 (np.isin), by a lookup table
inline cv::Mat isIn(const cv::Mat& labels, const std::vector<int>& set) {
    cv::Mat table = cv::Mat::zeros(1, 256, CV_8U);
    for (int label : set) table.at<uchar>(label) = 1;
    cv::Mat out;
    cv::LUT(labels, table, out);
    return out;
}

inline void checkLabels(const cv::Mat& labels) {
    if (labels.empty() || labels.type() != CV_8U || labels.dims != 2)
        throw std::invalid_argument("labels must be a non-empty 2-D CV_8U map of LIP classes");
}

inline void checkKeypoints(const cv::Mat& keypoints) {
    if (keypoints.type() != CV_32F || keypoints.rows != kNumKeypoints || keypoints.cols != 3)
        throw std::invalid_argument("keypoints must be 18x3 CV_32F (x, y, confidence)");
}
}  // namespace detail

// Distance between the shoulders in the frame of the keypoints (18x3 CV_32F); twice neck-shoulder with one
// shoulder; VITON's median (78 px at 256x192) when neither is found
inline double shoulderWidth(const cv::Mat& keypoints) {
    detail::checkKeypoints(keypoints);
    const detail::Point neck = detail::point(keypoints, detail::kNeck);
    const detail::Point right = detail::point(keypoints, detail::kRShoulder);
    const detail::Point left = detail::point(keypoints, detail::kLShoulder);
    if (right.found && left.found) return std::max(std::hypot(right.x - left.x, right.y - left.y), 8.0);
    const detail::Point one = right.found ? right : left;
    if (one.found && neck.found) return std::max(2 * std::hypot(one.x - neck.x, one.y - neck.y), 8.0);
    return 78.0;
}

// First row of the body below the head: the row under the lowest face pixel, else the neck keypoint's row
// (keypoints may be empty), else 0. Nothing above it is ever repainted.
inline int chinRow(const cv::Mat& labels, const cv::Mat& keypoints = cv::Mat()) {
    detail::checkLabels(labels);
    for (int y = labels.rows - 1; y >= 0; y--) {
        const uchar* row = labels.ptr<uchar>(y);
        if (std::find(row, row + labels.cols, uchar(kFaceLabel)) != row + labels.cols) return y + 1;
    }
    if (!keypoints.empty()) {
        detail::checkKeypoints(keypoints);
        const float* neck = keypoints.ptr<float>(detail::kNeck);
        if (neck[2] > 0)  // np.floor in float32, clipped to [0, rows], truncated
            return int(std::min(std::max(std::floor(neck[1]), 0.0f), float(labels.rows)));
    }
    return 0;
}

// (H, W) CV_8U 1/0: the region the TOM repaints (photo_kept.hole, to the bit). The old garment and the arms
// dilated by kHoleDilation, the torso polygon (shoulders to hips, hips estimated from the shoulders when
// out of frame) and capsules along the arms, less the head, the hands (arm pixels near a wrist) and
// everything above the chin. labels: LIP classes, keypoints 18x3 CV_32F in the same frame.
inline cv::Mat hole(const cv::Mat& labels, const cv::Mat& keypoints) {
    detail::checkLabels(labels);
    detail::checkKeypoints(keypoints);
    std::vector<int> garmentAndArms = kGarmentLabels;
    garmentAndArms.insert(garmentAndArms.end(), kArmLabels.begin(), kArmLabels.end());
    cv::Mat region = detail::isIn(labels, garmentAndArms);
    const int size = 2 * kHoleDilation + 1;
    cv::dilate(region, region, cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(size, size)));
    const double span = shoulderWidth(keypoints);
    const detail::Point neck = detail::point(keypoints, detail::kNeck);
    std::vector<detail::Point> shoulders, hips;
    for (int k : {detail::kRShoulder, detail::kLShoulder})
        if (detail::point(keypoints, k).found) shoulders.push_back(detail::point(keypoints, k));
    for (int k : {detail::kRHip, detail::kLHip})
        if (detail::point(keypoints, k).found) hips.push_back(detail::point(keypoints, k));
    if (neck.found && !shoulders.empty()) {
        if (hips.size() < 2) {  // out of frame: straight below the shoulders, a torso's length down
            hips.clear();
            for (const detail::Point& s : shoulders) hips.push_back(detail::Point{true, s.x, neck.y + kTorsoLength * span});
        }
        if (shoulders.size() == 2) std::reverse(hips.begin(), hips.end());
        // the polygon in float32, rounded half to even (np.round), as the Python code builds it
        std::vector<cv::Point> polygon, hull;
        for (const std::vector<detail::Point>* part : {&shoulders, &hips})
            for (const detail::Point& p : *part)
                polygon.emplace_back(detail::roundToInt(float(p.x)), detail::roundToInt(float(p.y)));
        cv::convexHull(polygon, hull);
        cv::fillConvexPoly(region, hull, cv::Scalar(1));
    }
    const int thickness = std::max(detail::roundToInt(kArmThickness * span), 3);
    const int chains[2][3] = {{detail::kRShoulder, detail::kRElbow, detail::kRWrist},
                              {detail::kLShoulder, detail::kLElbow, detail::kLWrist}};
    for (const auto& chain : chains)
        for (int i = 0; i < 2; i++) {
            const detail::Point a = detail::point(keypoints, chain[i]), b = detail::point(keypoints, chain[i + 1]);
            if (a.found && b.found)
                cv::line(region, cv::Point(detail::roundToInt(a.x), detail::roundToInt(a.y)),
                         cv::Point(detail::roundToInt(b.x), detail::roundToInt(b.y)), cv::Scalar(1), thickness);
        }
    region = region != 0;  // 255/0 while the masks below are applied
    const cv::Mat arms = detail::isIn(labels, kArmLabels);
    for (int wristIndex : {detail::kRWrist, detail::kLWrist}) {
        const detail::Point wrist = detail::point(keypoints, wristIndex);
        if (!wrist.found) continue;
        cv::Mat disc = cv::Mat::zeros(labels.size(), CV_8U);
        cv::circle(disc, cv::Point(detail::roundToInt(wrist.x), detail::roundToInt(wrist.y)),
                   std::max(detail::roundToInt(kHandRadius * span), 2), cv::Scalar(1), cv::FILLED);
        region.setTo(0, disc & arms);  // the hand stays
    }
    region.setTo(0, detail::isIn(labels, kHeadLabels));
    region.rowRange(0, chinRow(labels, keypoints)).setTo(0);
    return region / 255;
}

// The person tensor {1, 26, H, W} CV_32F: CP-VTON's agnostic {1, 22, H, W}, the person (BGR CV_8UC3) in
// [-1, 1] RGB with the hole set to 0 (grey), the hole (CV_8U, nonzero inside) as 1/0. The GMM reads its
// first 22 channels. `out` may already hold the agnostic in its first 22 channels (built in place).
inline void personTensor(const cv::Mat& agnostic, const cv::Mat& person, const cv::Mat& region, cv::Mat& out) {
    CV_Assert(agnostic.type() == CV_32F && agnostic.isContinuous() && agnostic.dims == 4 && agnostic.size[1] == 22);
    const int height = agnostic.size[2], width = agnostic.size[3];
    if (person.type() != CV_8UC3 || person.size() != cv::Size(width, height) || region.type() != CV_8U ||
        region.size() != person.size())
        throw std::invalid_argument("personTensor: person (CV_8UC3) and hole (CV_8U) must match the agnostic's size");
    const int sizes[4] = {1, kPersonChannels, height, width};
    out.create(4, sizes, CV_32F);
    CV_Assert(out.isContinuous());
    const size_t plane = size_t(height) * width;
    float* o = out.ptr<float>();
    if (agnostic.ptr<float>() != o) std::memcpy(o, agnostic.ptr<float>(), sizeof(float) * 22 * plane);
    const float* table = vton::detail::unitRangeTable();
    float *r = o + 22 * plane, *g = r + plane, *b = g + plane, *h = b + plane;
    for (int y = 0; y < height; y++) {
        const uchar* p = person.ptr<uchar>(y);
        const uchar* m = region.ptr<uchar>(y);
        for (int x = 0; x < width; x++, p += 3, r++, g++, b++, h++) {
            const bool inside = m[x] != 0;
            *r = inside ? 0.0f : table[p[2]];
            *g = inside ? 0.0f : table[p[1]];
            *b = inside ? 0.0f : table[p[0]];
            *h = inside ? 1.0f : 0.0f;
        }
    }
}

inline cv::Mat personTensor(const cv::Mat& agnostic, const cv::Mat& person, const cv::Mat& region) {
    cv::Mat out;
    personTensor(agnostic, person, region, out);
    return out;
}

// (H, W) CV_8U 1/0: the pixels the result takes from the try-on: inside the hole (region, nonzero), where
// the old garment was (it must go) or the new garment lies (coverage CV_32F > 1/2); elsewhere the photo's own
inline cv::Mat paintMask(const cv::Mat& labels, const cv::Mat& region, const cv::Mat& coverage) {
    detail::checkLabels(labels);
    CV_Assert(region.type() == CV_8U && coverage.type() == CV_32F && region.size() == labels.size() &&
              coverage.size() == labels.size());
    cv::Mat paint = (detail::isIn(labels, kGarmentLabels) != 0) | (coverage > 0.5f);
    paint &= region != 0;
    return paint / 255;
}
}  // namespace photo_kept

// ---------------------------------------------------------------------------- garment mask
// (H, W) CV_8U 1/0 foreground of a garment photographed on a plain background (garment_mask.cloth_mask, to
// the bit): the pixels that differ from the border's median colour by more than `tolerance` in a channel,
// with enclosed holes (a white print on the garment) filled, since only background reachable from the
// border is background. The median of an even count is the mean of the two middle values, truncated, as
// np.median(...).astype(int16) gives it.
inline cv::Mat clothMask(const cv::Mat& cloth, int tolerance = 16) {
    if (cloth.type() != CV_8UC3 || cloth.empty())
        throw std::invalid_argument("clothMask: the cloth must be a non-empty BGR CV_8UC3 image");
    std::vector<cv::Vec3b> border;
    border.reserve(2 * size_t(cloth.rows + cloth.cols));
    for (int row : {0, cloth.rows - 1})
        for (int x = 0; x < cloth.cols; x++) border.push_back(cloth.at<cv::Vec3b>(row, x));
    for (int column : {0, cloth.cols - 1})
        for (int y = 0; y < cloth.rows; y++) border.push_back(cloth.at<cv::Vec3b>(y, column));
    const size_t n = border.size();
    cv::Scalar background;
    std::vector<int> values(n);
    for (int c = 0; c < 3; c++) {
        for (size_t i = 0; i < n; i++) values[i] = border[i][c];
        std::nth_element(values.begin(), values.begin() + n / 2, values.end());
        const int upper = values[n / 2];
        if (n % 2) {
            background[c] = upper;
        } else {  // the largest value below the upper middle one is the lower middle one
            const int lower = *std::max_element(values.begin(), values.begin() + n / 2);
            background[c] = (lower + upper) / 2;
        }
    }
    cv::Mat difference;
    cv::absdiff(cloth, background, difference);  // |pixel - background| per channel, exact for 8-bit values
    std::vector<cv::Mat> planes;
    cv::split(difference, planes);
    cv::Mat largest = cv::max(cv::max(planes[0], planes[1]), planes[2]);
    cv::Mat outside = (largest <= tolerance) / 255;  // 1 where the pixel is the background colour
    cv::copyMakeBorder(outside, outside, 1, 1, 1, 1, cv::BORDER_CONSTANT, cv::Scalar(1));
    cv::floodFill(outside, cv::Point(0, 0), cv::Scalar(2));
    return (outside(cv::Rect(1, 1, cloth.cols, cloth.rows)) != 2) / 255;
}

inline bool isCpuBackend(int backend, int target) {
    return (backend == cv::dnn::DNN_BACKEND_DEFAULT || backend == cv::dnn::DNN_BACKEND_OPENCV) &&
           target == cv::dnn::DNN_TARGET_CPU;
}

// GMM + TOM of CP-VTON, mirroring cp_vton.CpVton. gmmPath: the published cp_vton_gmm.onnx (custom
// Correlation node, served by CorrelationLayer on the CPU) or the standard-op file of tools/convert_gmm.py
// (any backend); tomPath: cp_vton_tom.onnx. The TOM's metadata names its person representation
// (kRepresentationKey): CP-VTON's (25 -> 4 channels, the published pair's, also when the key is absent) or
// photo-kept (30 -> 5, ours: vton::photo_kept). preparePerson() builds what the TOM takes of a person,
// compose() composes its output.
class CpVton {
public:
    CpVton(const std::string& gmmPath, const std::string& tomPath, int backend = cv::dnn::DNN_BACKEND_OPENCV,
           int target = cv::dnn::DNN_TARGET_CPU, std::vector<int> keptLabels = kKeptLabels)
        : gmmPath_(gmmPath), tomPath_(tomPath) {
        for (int label : keptLabels) CV_Assert(label >= 0 && label < 256);
        keptLabels_ = keptLabels;
        registerCorrelationLayer();
        detail::OnnxFacts gmmFacts, tomFacts;
        gmm_ = readOnnx(gmmPath, "GMM", gmmFacts);
        std::vector<std::string> sortedInputs = gmmFacts.inputs, expected = {kGmmInputs[0], kGmmInputs[1]};
        std::sort(sortedInputs.begin(), sortedInputs.end());
        std::sort(expected.begin(), expected.end());
        if (sortedInputs != expected)
            throw RuntimeFailure("GMM model " + gmmPath + " has inputs " + detail::joined(sortedInputs) +
                                 "; expected " + detail::joined(expected) + " (agnostic, cloth)");
        tom_ = readOnnx(tomPath, "TOM", tomFacts);
        const auto named = tomFacts.metadata.find(kRepresentationKey);
        representation_ = named == tomFacts.metadata.end() ? kCpVtonRepresentation : named->second;
        if (representation_ == kCpVtonRepresentation) {
            personChannels_ = 22;
            tomChannels_ = 25;
        } else if (representation_ == kPhotoKeptRepresentation) {
            personChannels_ = photo_kept::kPersonChannels;
            tomChannels_ = photo_kept::kTomChannels;
        } else {
            throw RuntimeFailure("TOM model " + tomPath + " uses the person representation '" +
                                 printable(representation_) + "'; this version knows " + kCpVtonRepresentation +
                                 " and " + kPhotoKeptRepresentation);
        }
        // the channel count of the one input must be the representation's (0: symbolic, taken on trust)
        if (tomFacts.inputs.size() != 1 || tomFacts.inputDims[0].size() < 2 ||
            (tomFacts.inputDims[0][1] != tomChannels_ && tomFacts.inputDims[0][1] != 0)) {
            std::vector<std::string> described;
            for (size_t i = 0; i < tomFacts.inputs.size(); i++) {
                std::string dims;
                for (int64_t d : tomFacts.inputDims[i]) dims += (dims.empty() ? "" : "x") + std::to_string(d);
                described.push_back(tomFacts.inputs[i] + " (" + dims + ")");
            }
            throw RuntimeFailure("TOM model " + tomPath + " has inputs " + detail::joined(described) +
                                 cv::format("; expected one input of %d channels", tomChannels_));
        }
        tomInput_ = tomFacts.inputs[0];
        std::vector<std::string> types;
        gmm_.getLayerTypes(types);
        hasCorrelation_ = std::find(types.begin(), types.end(), "Correlation") != types.end();
        gmmSynthetic_ = gmmFacts.synthetic;
        tomSynthetic_ = tomFacts.synthetic;
        // said once both models are read and checked, so that a failure stays a one-line error
        auto warnSynthetic = [](const std::string& path, const char* output) {
            std::fprintf(stderr, "warning: %s holds SYNTHETIC seeded random weights; its output is not a %s\n",
                         path.substr(path.find_last_of('/') + 1).c_str(), output);
        };
        if (gmmSynthetic_) warnSynthetic(gmmPath, "cloth warp");
        if (tomSynthetic_) warnSynthetic(tomPath, "try-on");
        setBackendAndTarget(backend, target);
    }

    void setBackendAndTarget(int backend, int target) {
        if (hasCorrelation_ && !isCpuBackend(backend, target))
            std::fprintf(stderr, "warning: %s holds the custom Correlation layer, which runs on the CPU; "
                                 "convert it with tools/convert_gmm.py for this backend\n", gmmPath_.c_str());
        for (cv::dnn::Net* net : {&gmm_, &tom_}) {
            net->setPreferableBackend(backend);
            net->setPreferableTarget(target);
        }
    }

    bool gmmSynthetic() const { return gmmSynthetic_; }
    bool tomSynthetic() const { return tomSynthetic_; }
    bool hasCorrelationLayer() const { return hasCorrelation_; }
    // the TOM's person representation: kCpVtonRepresentation or kPhotoKeptRepresentation
    const std::string& representation() const { return representation_; }
    bool photoKept() const { return representation_ == kPhotoKeptRepresentation; }
    int personChannels() const { return personChannels_; }  // 22 (cp-vton) or 26 (photo-kept)
    int tomChannels() const { return tomChannels_; }        // 25 or 30

    // labels (256x192 CV_8U LIP classes), person (BGR CV_8UC3 256x192), pose (poseMap) ->
    // agnostic {1, 22, 256, 192} CV_32F (vton::prepareAgnostic with this model's kept labels)
    cv::Mat prepareAgnostic(const cv::Mat& labels, const cv::Mat& person, const cv::Mat& pose) const {
        return vton::prepareAgnostic(labels, person, pose, keptLabels_);
    }

    // What the TOM takes of a person (cp_vton.CpVton.prepare_person): CP-VTON's agnostic {1, 22, 256, 192},
    // or for a photo-kept TOM the person tensor {1, 26, 256, 192} of photo_kept::personTensor. labels and
    // person as prepareAgnostic, keypoints 18x3 CV_32F in the model frame. The GMM reads the first 22
    // channels of either. `out` is kept when it has the shape (a view into the TOM's input: inferFromKeypoints).
    void preparePerson(const cv::Mat& labels, const cv::Mat& person, const cv::Mat& keypoints, cv::Mat& out) const {
        const int plane = kHeight * kWidth;
        const int sizes[4] = {1, personChannels_, kHeight, kWidth};
        out.create(4, sizes, CV_32F);
        CV_Assert(out.isContinuous());
        const int agnosticSizes[4] = {1, 22, kHeight, kWidth}, poseSizes[3] = {kNumKeypoints, kHeight, kWidth};
        cv::Mat agnostic(4, agnosticSizes, CV_32F, out.ptr<float>());
        cv::Mat pose(3, poseSizes, CV_32F, out.ptr<float>() + 4 * plane);  // drawn in place
        poseMap(keypoints, pose);
        vton::prepareAgnostic(labels, person, pose, agnostic, keptLabels_);
        if (photoKept()) photo_kept::personTensor(agnostic, person, photo_kept::hole(labels, keypoints), out);
    }

    cv::Mat preparePerson(const cv::Mat& labels, const cv::Mat& person, const cv::Mat& keypoints) const {
        cv::Mat out;
        preparePerson(labels, person, keypoints, out);
        return out;
    }

    // cloth tensor {1, 3, H, W} + agnostic (or a person tensor: its first 22 channels) -> theta (1 x 50 CV_32F)
    cv::Mat predictTheta(const cv::Mat& clothTensor, const cv::Mat& agnostic) {
        CV_Assert(agnostic.type() == CV_32F && agnostic.isContinuous() && agnostic.dims == 4 && agnostic.size[1] >= 22);
        const int sizes[4] = {1, 22, agnostic.size[2], agnostic.size[3]};
        gmm_.setInput(agnostic.size[1] == 22 ? agnostic : cv::Mat(4, sizes, CV_32F, (void*)agnostic.ptr<float>()),
                      kGmmInputs[0]);
        gmm_.setInput(clothTensor, kGmmInputs[1]);
        cv::Mat theta = gmm_.forward();
        if (theta.total() != size_t(2 * kGridSize * kGridSize))
            throw RuntimeFailure("GMM model " + gmmPath_ + cv::format(" gave %d values; expected %d (TPS theta)",
                                                                      int(theta.total()), 2 * kGridSize * kGridSize));
        return theta.reshape(1, 1).clone();
    }

    // cloth BGR CV_8UC3 -> warped cloth {1, 3, 256, 192} in [-1, 1] RGB, by the GMM's TPS
    void warpCloth(const cv::Mat& cloth, const cv::Mat& agnostic, cv::Mat& warped) {
        toUnitRange(resizeToModel(cloth), clothTensor_);
        tpsGrid(predictTheta(clothTensor_, agnostic), grid_);
        gridSample(clothTensor_, grid_, warped);
    }

    cv::Mat warpCloth(const cv::Mat& cloth, const cv::Mat& agnostic) {
        cv::Mat warped;
        warpCloth(cloth, agnostic, warped);
        return warped;
    }

    // GMM and TOM for one garment (cp_vton.CpVton.render): personInput from preparePerson (22 or 26
    // channels), cloth BGR of any size -> warped cloth {1, 3, 256, 192} and the TOM's raw output
    // {1, 4 or 5, 256, 192}. For a photo-kept TOM the cloth's mask (clothMask) is warped with the cloth by
    // the same grid and is the TOM's last input channel. `warped` is a view into the TOM's input blob, valid
    // until the next call.
    void render(const cv::Mat& personInput, const cv::Mat& cloth, cv::Mat& warped, cv::Mat& tomOutput) {
        const int plane = kHeight * kWidth;
        CV_Assert(personInput.type() == CV_32F && personInput.isContinuous() &&
                  personInput.total() == size_t(personChannels_) * plane);
        float* input = tomInput();
        if (personInput.ptr<float>() != input)  // inferFromKeypoints builds it in place
            std::memcpy(input, personInput.ptr<float>(), sizeof(float) * personChannels_ * plane);
        const cv::Mat model = resizeToModel(cloth);
        toUnitRange(model, clothTensor_);
        const int agnosticSizes[4] = {1, 22, kHeight, kWidth};
        tpsGrid(predictTheta(clothTensor_, cv::Mat(4, agnosticSizes, CV_32F, input)), grid_);
        const int clothChannels = tomChannels_ - personChannels_;  // 3, or 4 with the mask
        const int warpedSizes[4] = {1, clothChannels, kHeight, kWidth};
        cv::Mat warpedAll(4, warpedSizes, CV_32F, input + personChannels_ * plane);
        if (photoKept()) {  // the cloth and its mask warped together
            const int sizes[4] = {1, 4, kHeight, kWidth};
            clothAndMask_.create(4, sizes, CV_32F);
            std::memcpy(clothAndMask_.ptr<float>(), clothTensor_.ptr<float>(), sizeof(float) * 3 * plane);
            cv::Mat maskPlane(kHeight, kWidth, CV_32F, clothAndMask_.ptr<float>() + 3 * plane);
            clothMask(model).convertTo(maskPlane, CV_32F);
            gridSample(clothAndMask_, grid_, warpedAll);
        } else {
            gridSample(clothTensor_, grid_, warpedAll);
        }
        const int clothSizes[4] = {1, 3, kHeight, kWidth};
        warped = cv::Mat(4, clothSizes, CV_32F, input + personChannels_ * plane);
        tom_.setInput(tomInputBlob_, tomInput_);
        tomOutput = tom_.forward();
        const int outputChannels = photoKept() ? 5 : 4;
        if (tomOutput.dims != 4 || tomOutput.size[1] != outputChannels || tomOutput.size[2] != kHeight ||
            tomOutput.size[3] != kWidth)
            throw RuntimeFailure("TOM model " + tomPath_ + " gave an output of shape " + shapeText(tomOutput) +
                                 cv::format("; expected 1x%dx256x192", outputChannels));
    }

    // TOM on concat(agnostic, warped) -> BGR CV_8UC3 256x192 result (CP-VTON's TOM: a photo-kept one needs
    // the person and its keypoints, inferFromKeypoints)
    cv::Mat tryOn(const cv::Mat& agnostic, const cv::Mat& warped) {
        if (photoKept())
            throw UsageError("tryOn composes CP-VTON's TOM output; the photo-kept TOM " + tomPath_ +
                             " needs the person and its keypoints (inferFromKeypoints, or preparePerson, render, compose)");
        const int plane = kHeight * kWidth;
        CV_Assert(agnostic.isContinuous() && warped.isContinuous() && agnostic.total() == size_t(22 * plane) &&
                  warped.total() == size_t(3 * plane));
        float* input = tomInput();
        if (agnostic.ptr<float>() != input)  // infer() builds both in place
            std::memcpy(input, agnostic.ptr<float>(), sizeof(float) * 22 * plane);
        if (warped.ptr<float>() != input + 22 * plane)
            std::memcpy(input + 22 * plane, warped.ptr<float>(), sizeof(float) * 3 * plane);
        tom_.setInput(tomInputBlob_, tomInput_);
        cv::Mat output = tom_.forward();
        if (output.dims != 4 || output.size[1] != 4 || output.size[2] != kHeight || output.size[3] != kWidth)
            throw RuntimeFailure("TOM model " + tomPath_ + " gave an output of shape " + shapeText(output) +
                                 "; expected 1x4x256x192");
        return compose(output, warped);
    }

    // rendered = tanh, mask = sigmoid; result = warped * mask + rendered * (1 - mask), as BGR CV_8UC3
    // ((x + 1) / 2 * 255, clamped, truncated, as CP-VTON saves its results). A photo-kept TOM's output
    // (5 channels) needs the person, its labels and its person tensor: the overload below.
    static cv::Mat compose(const cv::Mat& tomOutput, const cv::Mat& warped) {
        if (outputChannels(tomOutput) != 4)
            throw UsageError("a photo-kept TOM result needs the person, its labels and its person tensor");
        return blended(tomOutput, warped);
    }

    // compose() of either TOM (cp_vton.CpVton.compose): for a photo-kept TOM's output (5 channels) the result
    // takes the try-on only where photo_kept::paintMask(labels, hole, sigmoid(coverage)) says (the hole is
    // channel 25 of personInput), the person's own pixels (BGR CV_8UC3 256x192) elsewhere
    static cv::Mat compose(const cv::Mat& tomOutput, const cv::Mat& warped, const cv::Mat& person,
                           const cv::Mat& labels, const cv::Mat& personInput) {
        const int channels = outputChannels(tomOutput);
        cv::Mat result = blended(tomOutput, warped);
        if (channels == 4) return result;
        const int plane = kHeight * kWidth;
        if (person.type() != CV_8UC3 || person.size() != result.size() || labels.type() != CV_8U ||
            labels.size() != result.size() || personInput.type() != CV_32F || !personInput.isContinuous() ||
            personInput.total() != size_t(photo_kept::kPersonChannels) * plane)
            throw UsageError("a photo-kept TOM result needs the person, its labels and its person tensor");
        const cv::Mat holePlane(kHeight, kWidth, CV_32F, (void*)(personInput.ptr<float>() + 25 * plane));
        // sigmoid(coverage) in float32 as cp_vton.sigmoid: 1 / (1 + e**-x), e** by cv::exp (vectorised)
        cv::Mat coverage(kHeight, kWidth, CV_32F);
        const float* logits = tomOutput.ptr<float>() + 4 * plane;
        float* c = coverage.ptr<float>();
        for (int i = 0; i < plane; i++) c[i] = -logits[i];
        cv::exp(coverage, coverage);
        for (int i = 0; i < plane; i++) c[i] = 1.0f / (1.0f + c[i]);
        const cv::Mat paint = photo_kept::paintMask(labels, (holePlane > 0.5f) / 255, coverage);
        cv::Mat composed = person.clone();
        result.copyTo(composed, paint);
        return composed;
    }

    // The try-on of a prepared person (labels, person 256x192, pose from poseMap) and a cloth photo, for
    // CP-VTON's TOM (the photo-kept hole needs the keypoints: inferFromKeypoints). Agnostic and warped
    // cloth are built in place in the TOM's input.
    cv::Mat infer(const cv::Mat& labels, const cv::Mat& person, const cv::Mat& pose, const cv::Mat& cloth) {
        if (photoKept())
            throw UsageError("the photo-kept TOM " + tomPath_ + " needs the keypoints (its hole follows the pose): "
                             "use inferFromKeypoints");
        cv::Mat agnostic, warped;
        tomInputParts(agnostic, warped);
        vton::prepareAgnostic(labels, person, pose, agnostic, keptLabels_);
        warpCloth(cloth, agnostic, warped);
        return tryOn(agnostic, warped);
    }

    // The try-on of a prepared person (labels, person 256x192, keypoints 18x3 in the model frame) and a
    // cloth photo, for either TOM (cp_vton.CpVton.infer); the person tensor is built in place.
    cv::Mat inferFromKeypoints(const cv::Mat& labels, const cv::Mat& person, const cv::Mat& keypoints,
                               const cv::Mat& cloth) {
        cv::Mat personInput, warped, tomOutput;
        tomInputParts(personInput, warped);
        preparePerson(labels, person, keypoints, personInput);
        render(personInput, cloth, warped, tomOutput);
        return compose(tomOutput, warped, person, labels, personInput);
    }

    // Views of the TOM's input blob {1, 25 or 30, H, W}: the person (22 or 26 channels, preparePerson) and
    // the warped cloth (3 channels; for a photo-kept TOM 4, the warped mask last)
    void tomInputParts(cv::Mat& person, cv::Mat& warped) {
        const int personSizes[4] = {1, personChannels_, kHeight, kWidth};
        const int warpedSizes[4] = {1, tomChannels_ - personChannels_, kHeight, kWidth};
        person = cv::Mat(4, personSizes, CV_32F, tomInput());
        warped = cv::Mat(4, warpedSizes, CV_32F, tomInput() + personChannels_ * kHeight * kWidth);
    }

private:
    float* tomInput() {
        const int sizes[4] = {1, tomChannels_, kHeight, kWidth};
        tomInputBlob_.create(4, sizes, CV_32F);
        return tomInputBlob_.ptr<float>();
    }

    // 4 (CP-VTON) or 5 (photo-kept) channels of a TOM output {1, C, 256, 192}
    static int outputChannels(const cv::Mat& tomOutput) {
        const size_t plane = size_t(kHeight) * kWidth;
        CV_Assert(tomOutput.type() == CV_32F && tomOutput.isContinuous() &&
                  (tomOutput.total() == 4 * plane || tomOutput.total() == 5 * plane));
        return int(tomOutput.total() / plane);
    }

    // CP-VTON's composition of the first 4 output channels with the warped cloth (its first 3 channels)
    static cv::Mat blended(const cv::Mat& tomOutput, const cv::Mat& warped) {
        const int plane = kHeight * kWidth;
        CV_Assert(tomOutput.type() == CV_32F && tomOutput.isContinuous() && tomOutput.total() >= size_t(4 * plane));
        CV_Assert(warped.type() == CV_32F && warped.isContinuous() &&
                  (warped.total() == size_t(3 * plane) || warped.total() == size_t(4 * plane)));
        const float* t = tomOutput.ptr<float>();
        const float* w = warped.ptr<float>();
        cv::Mat result(kHeight, kWidth, CV_8UC3);
        float e[4 * kWidth];  // one row: exp(-2|x|) of the 3 rendered channels (tanh), exp(-x) of the mask
        cv::Mat exps(1, 4 * kWidth, CV_32F, e);
        for (int y = 0; y < kHeight; y++) {
            const int row = y * kWidth;
            for (int c = 0; c < 3; c++)
                for (int x = 0; x < kWidth; x++) e[c * kWidth + x] = -2.0f * std::abs(t[c * plane + row + x]);
            for (int x = 0; x < kWidth; x++) e[3 * kWidth + x] = -t[3 * plane + row + x];
            cv::exp(exps, exps);  // vectorised
            float mask[kWidth], mixed[3][kWidth];
            for (int x = 0; x < kWidth; x++) mask[x] = 1.0f / (1.0f + e[3 * kWidth + x]);
            for (int c = 0; c < 3; c++) {
                const float* tc = t + c * plane + row;
                const float* wc = w + c * plane + row;
                const float* ec = e + c * kWidth;
                for (int x = 0; x < kWidth; x++) {
                    const float magnitude = (1.0f - ec[x]) / (1.0f + ec[x]);  // tanh(|x|)
                    const float rendered = tc[x] < 0 ? -magnitude : magnitude;
                    const float value = wc[x] * mask[x] + rendered * (1.0f - mask[x]);
                    mixed[c][x] = std::min(std::max((value + 1.0f) * 0.5f * 255.0f, 0.0f), 255.0f);
                }
            }
            uchar* out = result.ptr<uchar>(y);
            for (int x = 0; x < kWidth; x++)
                for (int c = 0; c < 3; c++) out[3 * x + 2 - c] = uchar(mixed[c][x]);  // truncated
        }
        return result;
    }

    // a metadata value in one printable line
    static std::string printable(std::string text) {
        for (char& c : text)
            if ((unsigned char)c < 32 || c == 127) c = '?';
        return text;
    }

    static std::string shapeText(const cv::Mat& m) {
        std::string s;
        for (int i = 0; i < m.dims; i++) s += (i ? "x" : "") + std::to_string(m.size[i]);
        return s.empty() ? "(empty)" : s;
    }

    static cv::dnn::Net readOnnx(const std::string& path, const std::string& what, detail::OnnxFacts& facts) {
        struct stat info;
        if (::stat(path.c_str(), &info) != 0) throw UsageError(what + " model file not found: " + path);
        const std::vector<uchar> bytes = detail::readFileBytes(path, what + " model");
        if (!detail::readOnnxFacts(bytes, facts) || !facts.hasGraph)
            throw RuntimeFailure(what + " model " + path + " is not a valid ONNX file (truncated or damaged?)");
        cv::dnn::Net net;
        try {
            net = cv::dnn::readNetFromONNX(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        } catch (const cv::Exception& err) {
            throw RuntimeFailure(what + " model " + path + " cannot be read by OpenCV: " + err.err);
        }
        if (net.empty()) throw RuntimeFailure(what + " model " + path + " holds no network");
        return net;
    }

    std::string gmmPath_, tomPath_, tomInput_, representation_ = kCpVtonRepresentation;
    int personChannels_ = 22, tomChannels_ = 25;
    cv::dnn::Net gmm_, tom_;
    std::vector<int> keptLabels_;
    cv::Mat tomInputBlob_, clothTensor_, clothAndMask_, grid_;  // reused between calls (no page faults per try-on)
    bool hasCorrelation_ = false, gmmSynthetic_ = false, tomSynthetic_ = false;
};

// ---------------------------------------------------------------------------- person analysis
// A person needs the neck and a shoulder for the try-on to know where the garment goes; the hips may be
// out of frame (a waist-up or chest-up photo: the photo-kept hole estimates them from the shoulders).
inline bool hasTorso(const cv::Mat& keypoints) {
    auto found = [&](int k) { return keypoints.at<float>(k, 2) > 0; };
    return found(1) && (found(2) || found(5));
}

// Keypoints (18x3 CV_32F) in the photo's pixels -> the 192x256 model frame of the crop `box`
inline cv::Mat keypointsToModel(const cv::Mat& keypoints, const cv::Rect& box) {
    cv::Mat result = keypoints.clone();
    const float scaleX = float(double(kWidth) / box.width), scaleY = float(double(kHeight) / box.height);
    for (int k = 0; k < result.rows; k++) {
        float* p = result.ptr<float>(k);
        const bool found = p[2] > 0;
        p[0] = found ? (p[0] - float(box.x)) * scaleX : 0.0f;
        p[1] = found ? (p[1] - float(box.y)) * scaleY : 0.0f;
    }
    return result;
}

// LIP labels of the whole photo (any size with the same framing) -> the 256x192 model frame of the crop
// `box`, nearest neighbour (labels are classes). Rounding half to even, as Python's round().
inline cv::Mat labelsToModel(const cv::Mat& labels, const cv::Rect& box, cv::Size photo) {
    const double scaleY = double(labels.rows) / photo.height, scaleX = double(labels.cols) / photo.width;
    const int top = int(std::nearbyint(box.y * scaleY)), left = int(std::nearbyint(box.x * scaleX));
    const int bottom = std::max(top + 1, int(std::nearbyint((box.y + box.height) * scaleY)));
    const int right = std::max(left + 1, int(std::nearbyint((box.x + box.width) * scaleX)));
    cv::Mat out;
    cv::resize(labels(cv::Range(top, std::min(bottom, labels.rows)), cv::Range(left, std::min(right, labels.cols))),
               out, cv::Size(kWidth, kHeight), 0, 0, cv::INTER_NEAREST);
    return out;
}

// The chain after pose and parsing, as virtual_try_on.VirtualTryOn.infer with keypoints= and labels=:
// person and cloth BGR of any size, keypoints (18x3) and labels of the whole person photo ->
// the 256x192 BGR try-on. RuntimeFailure when the keypoints hold no torso.
inline cv::Mat tryOnPhoto(CpVton& model, const cv::Mat& person, const cv::Mat& cloth, const cv::Mat& keypoints,
                          const cv::Mat& labels) {
    cv::Rect box;
    const cv::Mat crop = cropToRatio(person, &box);
    const cv::Mat modelKeypoints = keypointsToModel(keypoints, box);
    if (!hasTorso(modelKeypoints))
        throw RuntimeFailure("no person found: pose found no neck and shoulders in the photo");
    return model.inferFromKeypoints(labelsToModel(labels, box, person.size()), resizeToModel(crop), modelKeypoints,
                                    cloth);
}

// ---------------------------------------------------------------------------- files
// A photo as BGR CV_8UC3: greyscale expanded, alpha dropped, 16-bit scaled to 8-bit (common.read_image).
inline cv::Mat readImage(const std::string& path, const std::string& what = "image") {
    const std::vector<uchar> bytes = detail::readFileBytes(path, what);
    if (bytes.empty()) throw UsageError(what + " file is empty: " + path);
    cv::Mat image;
    try {
        image = cv::imdecode(bytes, cv::IMREAD_UNCHANGED);
    } catch (const cv::Exception&) {
        image.release();
    }
    if (image.empty()) throw UsageError(what + " file is not a readable image: " + path);
    if (image.depth() == CV_16U) {  // round(v / 257)
        cv::Mat eight(image.size(), CV_MAKETYPE(CV_8U, image.channels()));
        const int length = image.cols * image.channels();
        for (int y = 0; y < image.rows; y++) {
            const ushort* s = image.ptr<ushort>(y);
            uchar* d = eight.ptr<uchar>(y);
            for (int i = 0; i < length; i++) d[i] = uchar((s[i] + 128) / 257);
        }
        image = eight;
    } else if (image.depth() != CV_8U) {
        throw UsageError(what + " has an unsupported pixel type: " + path);
    }
    if (image.channels() == 1) cv::cvtColor(image, image, cv::COLOR_GRAY2BGR);
    else if (image.channels() == 4) cv::cvtColor(image, image, cv::COLOR_BGRA2BGR);
    return image;
}

// (18, 3) CV_32F keypoints of the first person of an OpenPose JSON file (keys `pose_keypoints` or
// `pose_keypoints_2d`), read with cv::FileStorage; UsageError for anything else.
inline cv::Mat readKeypointsJson(const std::string& path) {
    struct stat info;
    if (::stat(path.c_str(), &info) != 0 || S_ISDIR(info.st_mode))
        throw UsageError("keypoints file not found: " + path);
    const std::vector<uchar> bytes = detail::readFileBytes(path, "keypoints");
    const std::string text(bytes.begin(), bytes.end());
    std::vector<double> values;
    bool hasList = false;
    try {
        cv::FileStorage fs(text, cv::FileStorage::READ | cv::FileStorage::MEMORY | cv::FileStorage::FORMAT_JSON);
        const cv::FileNode people = fs["people"];
        if (!people.isSeq() || people.size() == 0 || !people[0].isMap())
            throw UsageError("keypoints file " + path + " has no \"people\" list with a person");
        cv::FileNode list = people[0]["pose_keypoints"];
        if (list.isNone()) list = people[0]["pose_keypoints_2d"];
        if (list.isSeq()) {
            hasList = true;
            for (const cv::FileNode& v : list) {
                if (!v.isReal() && !v.isInt())
                    throw UsageError("keypoints file " + path + ": pose_keypoints holds non-numbers");
                values.push_back(double(v));
            }
        }
    } catch (const cv::Exception& err) {
        std::string message = err.err;
        message = message.substr(0, message.find('\n'));
        throw UsageError("keypoints file " + path + " is not valid JSON: " + message);
    }
    if (!hasList) throw UsageError("keypoints file " + path + ": the person has no \"pose_keypoints\" list");
    if (values.size() != size_t(3 * kNumKeypoints))
        throw UsageError("keypoints file " + path + cv::format(": expected %d numbers (18 COCO parts x 3), got %d",
                                                               3 * kNumKeypoints, int(values.size())));
    cv::Mat keypoints(kNumKeypoints, 3, CV_32F);
    for (int i = 0; i < 3 * kNumKeypoints; i++) {
        if (!std::isfinite(values[i]))
            throw UsageError("keypoints file " + path + ": pose_keypoints holds NaN or infinity");
        keypoints.ptr<float>()[i] = float(values[i]);
    }
    return keypoints;
}

namespace detail {
// The PLTE chunk of a palette PNG (colour type 3) as RGB triplets; empty for any other file.
inline std::vector<cv::Vec3b> pngPalette(const std::vector<uchar>& bytes) {
    static const uchar signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    std::vector<cv::Vec3b> palette;
    if (bytes.size() < 33 || std::memcmp(bytes.data(), signature, 8) != 0 || bytes[25] != 3) return palette;
    size_t pos = 8;
    while (pos + 8 <= bytes.size()) {
        const uint32_t length = (uint32_t(bytes[pos]) << 24) | (uint32_t(bytes[pos + 1]) << 16) |
                                (uint32_t(bytes[pos + 2]) << 8) | bytes[pos + 3];
        const std::string type(reinterpret_cast<const char*>(&bytes[pos + 4]), 4);
        if (length > bytes.size() - pos - 8) break;
        if (type == "PLTE") {
            for (uint32_t i = 0; i + 2 < length; i += 3) {
                const uchar* c = &bytes[pos + 8 + i];
                palette.emplace_back(c[0], c[1], c[2]);
            }
            break;
        }
        if (type == "IDAT" || type == "IEND") break;
        pos += 12 + length;
    }
    return palette;
}
}  // namespace detail

// Label of the nearest LIP palette colour (Euclidean, exact integers) of every pixel of a BGR image
inline cv::Mat nearestLabel(const cv::Mat& bgr) {
    cv::Mat labels(bgr.size(), CV_8U);
    int norms[kNumLabels];
    for (int k = 0; k < kNumLabels; k++) {
        const unsigned char* c = kLipPaletteRgb[k];
        norms[k] = c[0] * c[0] + c[1] * c[1] + c[2] * c[2];
    }
    for (int y = 0; y < bgr.rows; y++) {
        const uchar* p = bgr.ptr<uchar>(y);
        for (int x = 0; x < bgr.cols; x++, p += bgr.channels()) {
            int best = 0, bestScore = 0;
            for (int k = 0; k < kNumLabels; k++) {  // |c - p|^2 - |c|^2, first minimum wins
                const unsigned char* c = kLipPaletteRgb[k];
                const int score = norms[k] - 2 * (p[2] * c[0] + p[1] * c[1] + p[0] * c[2]);
                if (k == 0 || score < bestScore) best = k, bestScore = score;
            }
            labels.at<uchar>(y, x) = uchar(best);
        }
    }
    return labels;
}

// A LIP label map (CV_8U, 0..19) from a grey label PNG, a palette PNG whose indices are the labels
// (VITON / CP-VTON) or a colour rendering (nearest LIP colour): human_parsing.read_parsing.
inline cv::Mat readParsing(const std::string& path) {
    struct stat info;
    if (::stat(path.c_str(), &info) != 0) throw UsageError("parsing file not found: " + path);
    const std::vector<uchar> bytes = detail::readFileBytes(path, "parsing");
    cv::Mat image;
    try {
        if (!bytes.empty()) image = cv::imdecode(bytes, cv::IMREAD_UNCHANGED);
    } catch (const cv::Exception&) {
        image.release();
    }
    if (image.empty()) throw UsageError("parsing file is not a readable image: " + path);
    if (image.depth() != CV_8U && image.depth() != CV_16U)
        throw UsageError("parsing file " + path + " has an unsupported pixel type");
    const std::vector<cv::Vec3b> palette = detail::pngPalette(bytes);
    cv::Mat labels;
    if (!palette.empty() && image.depth() == CV_8U && image.channels() >= 3) {
        // OpenCV expands palette PNGs to colours: map each colour back to its (first) palette index
        std::map<uint32_t, int> index;
        for (int i = int(palette.size()) - 1; i >= 0; i--)
            index[(uint32_t(palette[i][0]) << 16) | (uint32_t(palette[i][1]) << 8) | palette[i][2]] = i;
        labels.create(image.size(), CV_32S);
        for (int y = 0; y < image.rows; y++) {
            const uchar* p = image.ptr<uchar>(y);
            for (int x = 0; x < image.cols; x++, p += image.channels()) {
                const auto found = index.find((uint32_t(p[2]) << 16) | (uint32_t(p[1]) << 8) | p[0]);
                if (found == index.end())
                    throw UsageError("parsing file " + path + " holds a colour outside its palette");
                labels.at<int>(y, x) = found->second;
            }
        }
    } else if (image.channels() == 1 || image.channels() == 2) {
        std::vector<cv::Mat> planes;
        cv::split(image, planes);
        planes[0].convertTo(labels, CV_32S);
    } else {
        if (image.depth() != CV_8U) throw UsageError("parsing file " + path + " is a 16-bit colour image");
        std::vector<cv::Mat> planes;
        cv::split(image, planes);
        if (cv::countNonZero(planes[0] != planes[1]) == 0 && cv::countNonZero(planes[1] != planes[2]) == 0)
            planes[0].convertTo(labels, CV_32S);  // a grey label map stored with three equal channels
        else {
            cv::Mat bgr;
            if (image.channels() == 4) cv::cvtColor(image, bgr, cv::COLOR_BGRA2BGR);
            else bgr = image;
            nearestLabel(bgr).convertTo(labels, CV_32S);
        }
    }
    double low, high;
    cv::minMaxLoc(labels, &low, &high);
    if (high >= kNumLabels || low < 0)
        throw UsageError("parsing file " + path + cv::format(" holds label %d; LIP labels are 0..%d", int(high),
                                                             kNumLabels - 1));
    cv::Mat out;
    labels.convertTo(out, CV_8U);
    return out;
}

// Write an image atomically: encoded in memory, written to a temporary file beside `path`, renamed.
// A failure never leaves a half-written file under the real name.
inline void writeImage(const std::string& path, const cv::Mat& image) {
    const size_t dot = path.find_last_of('.');
    const size_t slash = path.find_last_of('/');
    const std::string ext = dot == std::string::npos || (slash != std::string::npos && dot < slash) ? "" : path.substr(dot);
    std::vector<uchar> encoded;
    bool ok = false;
    try {
        ok = !ext.empty() && cv::imencode(ext, image, encoded);
    } catch (const cv::Exception&) {
        ok = false;
    }
    if (!ok) throw RuntimeFailure("cannot encode the image as '" + ext + "': " + path);
    const std::string directory = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    std::string tmp = directory + "/." + name + ".XXXXXX";
    std::vector<char> buffer(tmp.begin(), tmp.end());
    buffer.push_back('\0');
    const int fd = ::mkstemp(buffer.data());
    if (fd < 0) throw UsageError("cannot write " + path + ": " + std::strerror(errno));
    tmp = buffer.data();
    const mode_t mask = ::umask(0);
    ::umask(mask);
    bool written = ::fchmod(fd, 0666 & ~mask) == 0;
    size_t done = 0;
    while (written && done < encoded.size()) {
        const ssize_t n = ::write(fd, encoded.data() + done, encoded.size() - done);
        if (n <= 0) written = false;
        else done += size_t(n);
    }
    written = ::close(fd) == 0 && written;
    if (!written || ::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string reason = std::strerror(errno);
        ::unlink(tmp.c_str());
        throw RuntimeFailure("cannot write " + path + ": " + reason);
    }
}

}  // namespace vton

#endif  // VTON_VIRTUAL_TRY_ON_HPP
