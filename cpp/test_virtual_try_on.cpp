// Tests of virtual_try_on.hpp (run by ctest), and the helper commands that tests/test_cpp.py and
// benchmarks/compare_cpp.py use to compare the C++ code with Pillow and with the Python implementation.
//
//   test_virtual_try_on                       unit tests against independent references; exit 0 when all pass
//   test_virtual_try_on resize CASES OUT [PILLOW_MAJOR]   Pillow-resize every case of a case file
//   test_virtual_try_on tps THETA OUT         tpsGrid of a blob file
//   test_virtual_try_on gridsample IMAGE GRID OUT
//   test_virtual_try_on pairs GMM TOM DATAROOT PAIRS OUTDIR [FIRST COUNT]   try-on of dataset pairs
//   test_virtual_try_on bench PERSON CLOTH [REPEAT]
//   test_virtual_try_on agnostic DATAROOT STEM OUT    the agnostic blob tryOnPhoto gives the GMM
//   test_virtual_try_on photokept DATAROOT STEM CLOTH OUTDIR   the photo-kept hole.bin, person.bin (the
//                                             person tensor) and clothmask.bin of a dataset photo and cloth
//   test_virtual_try_on compose TOM_OUTPUT WARPED OUT.png   time of the non-network part of a try-on
//
// Case file: int32 count, then per case int32 height, width, channels, out_width, out_height and the
// pixels; the output file holds the resized pixels one case after another. Blob file: int32 dims, int32
// sizes, float32 data.
#include "virtual_try_on.hpp"

#include <opencv2/dnn/shape_utils.hpp>

#include <chrono>
#include <ctime>
#include <functional>
#include <iostream>
#include <numeric>
#include <random>
#include <sstream>

namespace {

int failures = 0;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            std::cerr << __FILE__ << ":" << __LINE__ << ": check failed: " #cond << std::endl; \
            failures++;                                                                      \
        }                                                                                    \
    } while (0)

// ---------------------------------------------------------------------------- blob files
cv::Mat readBlob(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    int32_t dims = 0;
    f.read(reinterpret_cast<char*>(&dims), 4);
    std::vector<int> sizes(dims);
    f.read(reinterpret_cast<char*>(sizes.data()), 4 * dims);
    cv::Mat blob(dims, sizes.data(), CV_32F);
    f.read(reinterpret_cast<char*>(blob.ptr<float>()), blob.total() * 4);
    if (!f) throw std::runtime_error("cannot read blob " + path);
    return blob;
}

void writeBlob(const std::string& path, const cv::Mat& blob) {
    std::ofstream f(path, std::ios::binary);
    const int32_t dims = blob.dims;
    f.write(reinterpret_cast<const char*>(&dims), 4);
    for (int i = 0; i < dims; i++) {
        const int32_t s = blob.size[i];
        f.write(reinterpret_cast<const char*>(&s), 4);
    }
    f.write(reinterpret_cast<const char*>(blob.ptr<float>()), blob.total() * 4);
}

int resizeCases(const std::string& in, const std::string& outPath, int pillowMajor) {
    std::ifstream f(in, std::ios::binary);
    std::ofstream out(outPath, std::ios::binary);
    int32_t count = 0;
    f.read(reinterpret_cast<char*>(&count), 4);
    for (int i = 0; i < count; i++) {
        int32_t h[5];
        f.read(reinterpret_cast<char*>(h), sizeof(h));
        cv::Mat image(h[0], h[1], CV_8UC(h[2]));
        f.read(reinterpret_cast<char*>(image.data), image.total() * image.elemSize());
        const cv::Mat result = vton::pilBilinearResize(image, cv::Size(h[3], h[4]), pillowMajor);
        out.write(reinterpret_cast<const char*>(result.data), result.total() * result.elemSize());
    }
    return f && out ? 0 : 1;
}

// ---------------------------------------------------------------------------- dataset pairs
int tryOnPairs(const std::string& gmm, const std::string& tom, const std::string& root, const std::string& pairs,
               const std::string& outDir, int first, int count) {
    vton::CpVton model(gmm, tom);
    std::ifstream list(pairs);
    std::string personName, clothName;
    int index = 0, done = 0;
    while (list >> personName >> clothName) {
        if (index++ < first) continue;
        if (count >= 0 && done >= count) break;
        const std::string personStem = personName.substr(0, personName.find_last_of('.'));
        const cv::Mat person = vton::readImage(root + "/image/" + personName, "person photo");
        const cv::Mat cloth = vton::readImage(root + "/cloth/" + clothName, "cloth photo");
        const cv::Mat keypoints = vton::readKeypointsJson(root + "/pose/" + personStem + "_keypoints.json");
        const cv::Mat labels = vton::readParsing(root + "/image-parse/" + personStem + ".png");
        vton::writeImage(outDir + "/" + personStem + "_" + clothName.substr(0, clothName.find_last_of('.')) + ".png",
                         vton::tryOnPhoto(model, person, cloth, keypoints, labels));
        done++;
    }
    std::cout << done << " pairs" << std::endl;
    return 0;
}

// The GMM's agnostic input for a dataset photo, as tryOnPhoto computes it
cv::Mat agnosticOfPhoto(const std::string& root, const std::string& stem) {
    const cv::Mat person = vton::readImage(root + "/image/" + stem + ".jpg", "person photo");
    const cv::Mat keypoints = vton::readKeypointsJson(root + "/pose/" + stem + "_keypoints.json");
    const cv::Mat labels = vton::readParsing(root + "/image-parse/" + stem + ".png");
    cv::Rect box;
    const cv::Mat crop = vton::cropToRatio(person, &box);
    return vton::prepareAgnostic(vton::labelsToModel(labels, box, person.size()), vton::resizeToModel(crop),
                                 vton::poseMap(vton::keypointsToModel(keypoints, box)));
}

// The photo-kept pieces of a dataset photo and cloth, as tryOnPhoto computes them for a photo-kept TOM:
// the hole and the person tensor of the photo, the mask of the cloth at the model's size
int photoKeptOfPhoto(const std::string& root, const std::string& stem, const std::string& clothName,
                     const std::string& outDir) {
    const cv::Mat person = vton::readImage(root + "/image/" + stem + ".jpg", "person photo");
    const cv::Mat keypoints = vton::readKeypointsJson(root + "/pose/" + stem + "_keypoints.json");
    const cv::Mat labels = vton::readParsing(root + "/image-parse/" + stem + ".png");
    const cv::Mat cloth = vton::readImage(root + "/cloth/" + clothName, "cloth photo");
    cv::Rect box;
    const cv::Mat crop = vton::cropToRatio(person, &box);
    const cv::Mat modelLabels = vton::labelsToModel(labels, box, person.size());
    const cv::Mat modelKeypoints = vton::keypointsToModel(keypoints, box);
    const cv::Mat modelPerson = vton::resizeToModel(crop);
    const cv::Mat hole = vton::photo_kept::hole(modelLabels, modelKeypoints);
    const cv::Mat agnostic = vton::prepareAgnostic(modelLabels, modelPerson, vton::poseMap(modelKeypoints));
    cv::Mat holeBlob, maskBlob;
    hole.convertTo(holeBlob, CV_32F);
    vton::clothMask(vton::resizeToModel(cloth)).convertTo(maskBlob, CV_32F);
    writeBlob(outDir + "/hole.bin", holeBlob);
    writeBlob(outDir + "/person.bin", vton::photo_kept::personTensor(agnostic, modelPerson, hole));
    writeBlob(outDir + "/clothmask.bin", maskBlob);
    return 0;
}

// ---------------------------------------------------------------------------- benchmark
// The same work and inputs as benchmarks/benchmark_pipeline.py's "non-network total": agnostic (with the
// body-shape blur) + pose map + TPS grid + grid sample + composition.
int bench(const std::string& personPath, const std::string& clothPath, int repeat) {
    const cv::Mat person = cv::imread(personPath), clothImage = cv::imread(clothPath);
    const cv::Mat cloth = vton::toUnitRange(clothImage);
    cv::Mat labels(person.size(), CV_8U);
    for (int y = 0; y < person.rows; y++)
        for (int x = 0; x < person.cols; x++) {
            const cv::Vec3b p = person.at<cv::Vec3b>(y, x);
            const bool body = std::min({p[0], p[1], p[2]}) < 235;
            labels.at<uchar>(y, x) = body ? (y < 60 ? 13 : 5) : 0;
        }
    cv::Mat keypoints(18, 3, CV_32F);
    for (int k = 0; k < 18; k++) {
        keypoints.at<float>(k, 0) = float(60 + 70.0 * k / 17);
        keypoints.at<float>(k, 1) = float(30 + 215.0 * k / 17);
        keypoints.at<float>(k, 2) = 1.0f;
    }
    std::mt19937 rng(0);
    std::uniform_real_distribution<float> uniform(-0.2f, 0.2f);
    std::normal_distribution<float> normal;
    cv::Mat theta(1, 50, CV_32F);
    for (int i = 0; i < 50; i++) theta.at<float>(i) = uniform(rng);
    const int sizes[4] = {1, 4, vton::kHeight, vton::kWidth};
    cv::Mat tomOut(4, sizes, CV_32F);
    for (size_t i = 0; i < tomOut.total(); i++) tomOut.ptr<float>()[i] = normal(rng);
    // buffers kept between calls, as CpVton::infer keeps its own
    cv::Mat poseBuffer, agnosticBuffer, gridBuffer, warpedBuffer;
    auto total = [&] {
        vton::poseMap(keypoints, poseBuffer);
        vton::prepareAgnostic(labels, person, poseBuffer, agnosticBuffer);
        vton::tpsGrid(theta, gridBuffer);
        vton::gridSample(cloth, gridBuffer, warpedBuffer);
        return vton::CpVton::compose(tomOut, warpedBuffer);
    };
    // everything tryOnPhoto does besides reading files and running the two networks, with the GMM's and
    // TOM's outputs replaced by theta and tomOut: crop, keypoints and labels to the model frame, pose map
    // and agnostic in the TOM's input blob, cloth tensor, TPS grid, warp into the TOM's input, composition
    const int blobSizes[4] = {1, 25, vton::kHeight, vton::kWidth};
    cv::Mat tomInput(4, blobSizes, CV_32F), clothTensor;
    const int agnosticSizes[4] = {1, 22, vton::kHeight, vton::kWidth}, warpedSizes[4] = {1, 3, vton::kHeight, vton::kWidth};
    const int poseSizes[3] = {18, vton::kHeight, vton::kWidth};
    cv::Mat agnosticView(4, agnosticSizes, CV_32F, tomInput.ptr<float>());
    cv::Mat poseView(3, poseSizes, CV_32F, tomInput.ptr<float>() + 4 * vton::kHeight * vton::kWidth);
    cv::Mat warpedView(4, warpedSizes, CV_32F, tomInput.ptr<float>() + 22 * vton::kHeight * vton::kWidth);
    auto tryOnPhotoWithoutNetworks = [&] {
        cv::Rect box;
        const cv::Mat crop = vton::cropToRatio(person, &box);
        vton::poseMap(vton::keypointsToModel(keypoints, box), poseView);
        vton::prepareAgnostic(vton::labelsToModel(labels, box, person.size()), vton::resizeToModel(crop), poseView,
                              agnosticView);
        vton::toUnitRange(vton::resizeToModel(clothImage), clothTensor);
        vton::tpsGrid(theta, gridBuffer);
        vton::gridSample(clothTensor, gridBuffer, warpedView);
        return vton::CpVton::compose(tomOut, warpedView);
    };
    struct Part {
        const char* name;
        std::function<void()> fn;
    };
    const cv::Mat pose = vton::poseMap(keypoints);
    const cv::Mat grid = vton::tpsGrid(theta);
    const cv::Mat warped = vton::gridSample(cloth, grid);
    const std::vector<Part> parts = {
        {"pose_map", [&] { vton::poseMap(keypoints, poseBuffer); }},
        {"prepare_agnostic", [&] { vton::prepareAgnostic(labels, person, pose, agnosticBuffer); }},
        {"tps_grid", [&] { vton::tpsGrid(theta, gridBuffer); }},
        {"grid_sample", [&] { vton::gridSample(cloth, grid, warpedBuffer); }},
        {"compose", [&] { vton::CpVton::compose(tomOut, warped); }},
        {"non-network total", [&] { total(); }},
        {"tryOnPhoto non-net", [&] { tryOnPhotoWithoutNetworks(); }},
    };
    // wall time, and the thread's CPU time (what a shared, loaded machine does not inflate)
    auto cpuMs = [] {
        timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
    };
    std::cout << "OpenCV " << CV_VERSION << ", " << repeat
              << " repetitions, per call in ms: wall median / 95th percentile, CPU median / 95th percentile"
              << std::endl;
    for (const Part& part : parts) {
        part.fn();
        std::vector<double> wall, cpu;
        for (int i = 0; i < repeat; i++) {
            const auto start = std::chrono::steady_clock::now();
            const double cpuStart = cpuMs();
            part.fn();
            cpu.push_back(cpuMs() - cpuStart);
            wall.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
        }
        std::sort(wall.begin(), wall.end());
        std::sort(cpu.begin(), cpu.end());
        const size_t p95 = std::min(wall.size() - 1, size_t(0.95 * wall.size()));
        std::printf("  %-18s %7.3f %7.3f   %7.3f %7.3f\n", part.name, wall[wall.size() / 2], wall[p95],
                    cpu[cpu.size() / 2], cpu[p95]);
    }
    return 0;
}

// ---------------------------------------------------------------------------- unit tests
void testCrop() {
    struct Case {
        int h, w;
        cv::Rect box;
    };
    for (const Case& c : {Case{256, 192, {0, 0, 192, 256}}, Case{1000, 1000, {125, 0, 750, 1000}},
                          Case{200, 100, {0, 33, 100, 133}}, Case{513, 385, {0, 0, 385, 513}},
                          Case{3, 1, {0, 1, 1, 1}}}) {
        cv::Rect box;
        const cv::Mat crop = vton::cropToRatio(cv::Mat(c.h, c.w, CV_8UC3), &box);
        CHECK(box == c.box);
        CHECK(crop.size() == c.box.size());
    }
    bool thrown = false;
    try {
        vton::cropToRatio(cv::Mat());
    } catch (const vton::UsageError&) {
        thrown = true;
    }
    CHECK(thrown);
}

void testPillowResize() {
    // Pillow 13.0.0's own output for this input (Image.fromarray(img).resize(size, BILINEAR))
    cv::Mat image(7, 5, CV_8U);
    for (int i = 0; i < 35; i++) image.data[i] = uchar(i * 37 % 256);
    struct Case {
        cv::Size size;
        std::vector<int> pixels;
    };
    const std::vector<Case> cases = {
        {{3, 2}, {116, 104, 107, 127, 130, 118}},
        {{2, 9}, {37, 111, 114, 72, 152, 93, 135, 146, 80, 154, 88, 99, 141, 82, 162, 120, 123, 197}},
        {{5, 3}, {104, 141, 68, 105, 87, 118, 95, 117, 139, 116, 147, 129, 166, 93, 130}},
        {{9, 11}, {0, 12, 33, 53, 74, 95, 115, 136, 148, 84, 96, 117, 86, 42, 63, 83, 104, 116, 179, 191,
                   212, 129, 20, 41, 58, 66, 71, 133, 145, 166, 156, 138, 159, 158, 75, 25, 88, 100, 121, 141,
                   162, 183, 185, 115, 73, 43, 55, 76, 96, 117, 138, 158, 179, 191, 161, 119, 49, 51, 72, 93,
                   113, 134, 146, 209, 159, 76, 75, 96, 78, 68, 89, 101, 163, 168, 176, 193, 214, 105, 22, 43,
                   55, 118, 130, 151, 171, 192, 148, 117, 138, 150, 86, 98, 119, 139, 160, 181, 201, 222, 234}},
    };
    for (const Case& c : cases) {
        const cv::Mat out = vton::pilBilinearResize(image, c.size);
        CHECK(out.size() == c.size && out.type() == CV_8U);
        CHECK(std::equal(c.pixels.begin(), c.pixels.end(), out.data));
    }
    // RGBA (premultiplied resampling)
    cv::Mat rgba(7, 5, CV_8UC4);
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 5; x++) {
            const uchar v = image.at<uchar>(y, x);
            rgba.at<cv::Vec4b>(y, x) = cv::Vec4b(v, image.at<uchar>(6 - y, x), uchar(255 - v),
                                                 uchar(v > 100 ? 255 : v > 50 ? 77 : 0));
        }
    const std::vector<int> expected = {193, 170, 61, 121, 141, 165, 113, 88, 127, 193, 125, 158, 146, 141, 108, 193,
                                       171, 77, 83, 204, 189, 130, 65, 137, 196, 144, 58, 136, 156, 109, 100, 109,
                                       139, 102, 115, 164, 150, 127, 105, 196, 182, 71, 72, 219, 211, 127, 43, 142};
    const cv::Mat out = vton::pilBilinearResize(rgba, cv::Size(3, 4));
    CHECK(std::equal(expected.begin(), expected.end(), out.data));
    CHECK(cv::norm(vton::pilBilinearResize(image, image.size()), image, cv::NORM_INF) == 0);
}

void testPoseMap() {
    cv::Mat keypoints = cv::Mat::zeros(18, 3, CV_32F);
    keypoints.at<float>(0, 0) = 10.7f, keypoints.at<float>(0, 1) = 20.2f, keypoints.at<float>(0, 2) = 0.5f;
    keypoints.at<float>(1, 0) = 3.0f, keypoints.at<float>(1, 1) = 250.0f, keypoints.at<float>(1, 2) = 1.0f;
    keypoints.at<float>(2, 0) = 1.0f, keypoints.at<float>(2, 1) = 50.0f, keypoints.at<float>(2, 2) = 1.0f;  // x <= 1
    const cv::Mat maps = vton::poseMap(keypoints);
    CHECK(maps.dims == 3 && maps.size[0] == 18 && maps.size[1] == 256 && maps.size[2] == 192);
    const cv::Mat first(256, 192, CV_32F, const_cast<float*>(maps.ptr<float>(0)));
    // square [int(10.7 - 5), int(10.7 + 5)] x [int(20.2 - 5), int(20.2 + 5)] = [5, 15] x [15, 25]
    CHECK(cv::countNonZero(first > 0) == 11 * 11);
    CHECK(first.at<float>(15, 5) == 1 && first.at<float>(25, 15) == 1 && first.at<float>(14, 5) == -1);
    const cv::Mat second(256, 192, CV_32F, const_cast<float*>(maps.ptr<float>(1)));
    CHECK(cv::countNonZero(second > 0) == 9 * 11);  // x in [0, 8], y in [245, 255]: clipped
    const cv::Mat third(256, 192, CV_32F, const_cast<float*>(maps.ptr<float>(2)));
    CHECK(cv::countNonZero(third > 0) == 0);
}

// TPS solved for one theta in double and evaluated point by point: an independent reference
void testTpsGrid() {
    std::mt19937 rng(3);
    std::uniform_real_distribution<double> uniform(-0.3, 0.3);
    const int h = 31, w = 23, g = 5, n = g * g;
    cv::Mat theta(2, 2 * n, CV_32F);
    for (int i = 0; i < theta.rows * theta.cols; i++) theta.ptr<float>()[i] = float(uniform(rng));
    const cv::Mat grid = vton::tpsGrid(theta, h, w, g);
    CHECK(grid.dims == 4 && grid.size[0] == 2 && grid.size[1] == h && grid.size[2] == w && grid.size[3] == 2);
    double worst = 0;
    for (int b = 0; b < 2; b++) {
        std::vector<double> px(n), py(n);
        for (int k = 0; k < n; k++) px[k] = -1 + 2.0 * (k / g) / (g - 1), py[k] = -1 + 2.0 * (k % g) / (g - 1);
        cv::Mat system = cv::Mat::zeros(n + 3, n + 3, CV_64F);
        auto u = [](double d2) { return d2 == 0 ? 0.0 : d2 * std::log(d2); };
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++)
                system.at<double>(i, j) = u(std::pow(px[i] - px[j], 2) + std::pow(py[i] - py[j], 2));
            system.at<double>(i, n) = system.at<double>(n, i) = 1;
            system.at<double>(i, n + 1) = system.at<double>(n + 1, i) = px[i];
            system.at<double>(i, n + 2) = system.at<double>(n + 2, i) = py[i];
        }
        for (int axis = 0; axis < 2; axis++) {
            cv::Mat target = cv::Mat::zeros(n + 3, 1, CV_64F), coef;
            for (int k = 0; k < n; k++)
                target.at<double>(k) = (axis ? py[k] : px[k]) + theta.at<float>(b, axis * n + k);
            cv::solve(system, target, coef, cv::DECOMP_SVD);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    const double gx = -1 + 2.0 * x / (w - 1), gy = -1 + 2.0 * y / (h - 1);
                    double value = coef.at<double>(n) + coef.at<double>(n + 1) * gx + coef.at<double>(n + 2) * gy;
                    for (int k = 0; k < n; k++)
                        value += coef.at<double>(k) * u(std::pow(gx - px[k], 2) + std::pow(gy - py[k], 2));
                    const int idx[4] = {b, y, x, axis};
                    worst = std::max(worst, std::abs(value - grid.at<float>(idx)));
                }
        }
    }
    CHECK(worst < 1e-4);
    // theta = 0 is the identity grid
    const cv::Mat identity = vton::tpsGrid(cv::Mat::zeros(1, 2 * n, CV_32F), h, w, g);
    double off = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const int ix[4] = {0, y, x, 0}, iy[4] = {0, y, x, 1};
            off = std::max({off, std::abs(identity.at<float>(ix) - (-1 + 2.0 * x / (w - 1))),
                            std::abs(identity.at<float>(iy) - (-1 + 2.0 * y / (h - 1)))});
        }
    CHECK(off < 1e-5);
}

// grid_sample against a direct double-precision bilinear interpolation with clamped coordinates
void testGridSample() {
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> uniform(-1.3f, 1.3f);
    const int c = 3, h = 9, w = 7, oh = 11, ow = 13;
    const int isz[4] = {1, c, h, w}, gsz[4] = {1, oh, ow, 2};
    cv::Mat image(4, isz, CV_32F), grid(4, gsz, CV_32F);
    for (size_t i = 0; i < image.total(); i++) image.ptr<float>()[i] = uniform(rng);
    for (size_t i = 0; i < grid.total(); i++) grid.ptr<float>()[i] = uniform(rng);
    grid.ptr<float>()[0] = -1, grid.ptr<float>()[1] = 1;  // exact corner
    const cv::Mat out = vton::gridSample(image, grid);
    double worst = 0;
    for (int p = 0; p < oh * ow; p++) {
        const double x = std::min(std::max((grid.ptr<float>()[2 * p] + 1.0) / 2 * (w - 1), 0.0), w - 1.0);
        const double y = std::min(std::max((grid.ptr<float>()[2 * p + 1] + 1.0) / 2 * (h - 1), 0.0), h - 1.0);
        const int x0 = int(std::floor(x)), y0 = int(std::floor(y));
        const int x1 = std::min(x0 + 1, w - 1), y1 = std::min(y0 + 1, h - 1);
        for (int ch = 0; ch < c; ch++) {
            auto at = [&](int yy, int xx) { return double(image.ptr<float>()[(ch * h + yy) * w + xx]); };
            const double v = at(y0, x0) * (1 - (x - x0)) * (1 - (y - y0)) + at(y0, x1) * (x - x0) * (1 - (y - y0)) +
                             at(y1, x0) * (1 - (x - x0)) * (y - y0) + at(y1, x1) * (x - x0) * (y - y0);
            worst = std::max(worst, std::abs(v - out.ptr<float>()[ch * oh * ow + p]));
        }
    }
    CHECK(worst < 1e-5);
    CHECK(out.ptr<float>()[0] == image.ptr<float>()[(h - 1) * w]);  // (-1, 1): bottom-left pixel exactly
}

void testCorrelationLayer() {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal;
    const int b = 2, c = 5, h = 4, w = 3;
    const int sz[4] = {b, c, h, w}, osz[4] = {b, h * w, h, w};
    std::vector<cv::Mat> inputs = {cv::Mat(4, sz, CV_32F), cv::Mat(4, sz, CV_32F)}, outputs = {cv::Mat(4, osz, CV_32F)},
                         internals;
    for (cv::Mat& m : inputs)
        for (size_t i = 0; i < m.total(); i++) m.ptr<float>()[i] = normal(rng);
    cv::dnn::LayerParams params;
    vton::CorrelationLayer layer(params);
    std::vector<cv::dnn::MatShape> shapes, internalShapes;
    layer.getMemoryShapes({cv::dnn::shape(inputs[0]), cv::dnn::shape(inputs[1])}, 1, shapes, internalShapes);
    CHECK(shapes.size() == 1 && shapes[0] == cv::dnn::shape(outputs[0]));
    layer.forward(inputs, outputs, internals);
    double worst = 0;
    for (int n = 0; n < b; n++)
        for (int ii = 0; ii < h; ii++)
            for (int jj = 0; jj < w; jj++)
                for (int i = 0; i < h; i++)
                    for (int j = 0; j < w; j++) {
                        double sum = 0;
                        for (int k = 0; k < c; k++) {
                            const int ia[4] = {n, k, ii, jj}, ib[4] = {n, k, i, j};
                            sum += double(inputs[0].at<float>(ia)) * inputs[1].at<float>(ib);
                        }
                        const int io[4] = {n, jj * h + ii, i, j};
                        worst = std::max(worst, std::abs(sum - outputs[0].at<float>(io)));
                    }
    CHECK(worst < 1e-5);
}

std::string writeText(const std::string& name, const std::string& text) {
    const char* tmp = std::getenv("TMPDIR");
    const std::string path = std::string(tmp && *tmp ? tmp : "/tmp") + "/vton_test_" + std::to_string(::getpid()) + "_" + name;
    std::ofstream(path) << text;
    return path;
}

template <class Error, class Fn>
bool throws(Fn fn) {
    try {
        fn();
    } catch (const Error&) {
        return true;
    } catch (...) {
        return false;
    }
    return false;
}

void testKeypointsJson() {
    std::ostringstream values;
    for (int i = 0; i < 54; i++) values << (i ? ", " : "") << (i % 3 == 2 ? "0.5" : std::to_string(i) + ".25");
    const std::string good = writeText("good.json", "{\"version\": 1.0, \"people\": [{\"face_keypoints\": [], "
                                                    "\"pose_keypoints\": [" + values.str() + "]}]}");
    const cv::Mat k = vton::readKeypointsJson(good);
    CHECK(k.rows == 18 && k.cols == 3 && k.at<float>(0, 0) == 0.25f && k.at<float>(1, 1) == 4.25f &&
          k.at<float>(17, 2) == 0.5f);
    const std::string second = writeText("2d.json", "{\"people\": [{\"pose_keypoints_2d\": [" + values.str() + "]}]}");
    CHECK(vton::readKeypointsJson(second).at<float>(17, 1) == 52.25f);
    CHECK(throws<vton::UsageError>([] { vton::readKeypointsJson("/nonexistent/keypoints.json"); }));
    for (const std::string& bad : {std::string("{\"people\": [{\"pose_keypoints\": [1, 2]}]}"), std::string("{\"people\": []}"),
                                   std::string("not json at all {"), std::string(""), std::string("{\"people\": [{}]}"),
                                   std::string("{\"people\": [{\"pose_keypoints\": [" + values.str() + ", 1]}]}")}) {
        const std::string path = writeText("bad.json", bad);
        CHECK(throws<vton::UsageError>([&] { vton::readKeypointsJson(path); }));
    }
}

void testParsingReader() {
    const char* tmp = std::getenv("TMPDIR");
    const std::string base = std::string(tmp && *tmp ? tmp : "/tmp") + "/vton_test_" + std::to_string(::getpid());
    cv::Mat labels(20, 30, CV_8U);
    for (int i = 0; i < 600; i++) labels.data[i] = uchar(i % 20);
    cv::imwrite(base + "_grey.png", labels);
    CHECK(cv::norm(vton::readParsing(base + "_grey.png"), labels, cv::NORM_INF) == 0);
    cv::Mat colour(labels.size(), CV_8UC3);
    for (int i = 0; i < 600; i++) {
        const unsigned char* c = vton::kLipPaletteRgb[labels.data[i]];
        colour.at<cv::Vec3b>(i / 30, i % 30) = cv::Vec3b(c[2], c[1], c[0]);
    }
    cv::imwrite(base + "_colour.png", colour);
    CHECK(cv::norm(vton::readParsing(base + "_colour.png"), labels, cv::NORM_INF) == 0);
    cv::Mat tooHigh = labels.clone();
    tooHigh.at<uchar>(3, 3) = 20;
    cv::imwrite(base + "_high.png", tooHigh);
    CHECK(throws<vton::UsageError>([&] { vton::readParsing(base + "_high.png"); }));
    CHECK(throws<vton::UsageError>([&] { vton::readParsing(base + "_missing.png"); }));
    std::ofstream(base + "_corrupt.png") << "\x89PNG\r\n garbage";
    CHECK(throws<vton::UsageError>([&] { vton::readParsing(base + "_corrupt.png"); }));
    for (const char* suffix : {"_grey.png", "_colour.png", "_high.png", "_corrupt.png"}) std::remove((base + suffix).c_str());
}

void testBadModels() {
    CHECK(throws<vton::UsageError>([] { vton::CpVton("/nonexistent/gmm.onnx", "/nonexistent/tom.onnx"); }));
    const std::string junk = writeText("junk.onnx", std::string("\xff\xff\xff\xff not a model", 20));
    CHECK(throws<vton::RuntimeFailure>([&] { vton::CpVton(junk, junk); }));
    std::remove(junk.c_str());
}

void testClothMask() {
    // a garment with a white print on a white background: the print, enclosed, is garment
    cv::Mat cloth(40, 30, CV_8UC3, cv::Scalar(255, 255, 255));
    cloth(cv::Rect(5, 5, 20, 30)).setTo(cv::Scalar(0, 0, 200));
    cloth(cv::Rect(10, 10, 5, 5)).setTo(cv::Scalar(255, 255, 255));
    cv::Mat expected = cv::Mat::zeros(cloth.size(), CV_8U);
    expected(cv::Rect(5, 5, 20, 30)).setTo(1);
    CHECK(cv::norm(vton::clothMask(cloth), expected, cv::NORM_INF) == 0);
    // an even border count: the median is the mean of the two middle values, truncated (100.5 -> 100), so
    // 117 differs by more than the tolerance of 16 and 116 does not
    cv::Mat grey(10, 10, CV_8UC3, cv::Scalar::all(100));
    grey(cv::Rect(0, 0, 10, 5)).setTo(cv::Scalar::all(101));  // 20 of the 40 border values (corners twice)
    grey.at<cv::Vec3b>(6, 4) = cv::Vec3b(100, 117, 100);
    grey.at<cv::Vec3b>(6, 6) = cv::Vec3b(100, 116, 100);
    const cv::Mat mask = vton::clothMask(grey);
    CHECK(mask.at<uchar>(6, 4) == 1 && mask.at<uchar>(6, 6) == 0 && cv::countNonZero(mask) == 1);
    CHECK(throws<std::invalid_argument>([] { vton::clothMask(cv::Mat(4, 4, CV_8U)); }));
}

void testWriteImage() {
    const std::string path = writeText("out.png", "old");
    vton::writeImage(path, cv::Mat(4, 3, CV_8UC3, cv::Scalar(1, 2, 3)));
    CHECK(cv::imread(path).at<cv::Vec3b>(3, 2) == cv::Vec3b(1, 2, 3));
    std::remove(path.c_str());
    CHECK(throws<vton::UsageError>([] { vton::writeImage("/nonexistent-dir/out.png", cv::Mat(4, 3, CV_8UC3)); }));
}

int unitTests() {
    testCrop();
    testPillowResize();
    testPoseMap();
    testTpsGrid();
    testGridSample();
    testCorrelationLayer();
    testKeypointsJson();
    testParsingReader();
    testBadModels();
    testClothMask();
    testWriteImage();
    std::cout << (failures ? "FAILED: " : "passed, ") << failures << " failed checks" << std::endl;
    return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const std::string command = argc > 1 ? argv[1] : "";
        if (command.empty()) return unitTests();
        if (command == "resize" && argc >= 4) return resizeCases(argv[2], argv[3], argc > 4 ? std::atoi(argv[4]) : 13);
        if (command == "tps" && argc == 4) {
            writeBlob(argv[3], vton::tpsGrid(readBlob(argv[2]).reshape(1, 1)));
            return 0;
        }
        if (command == "gridsample" && argc == 5) {
            writeBlob(argv[4], vton::gridSample(readBlob(argv[2]), readBlob(argv[3])));
            return 0;
        }
        if (command == "pairs" && argc >= 7)
            return tryOnPairs(argv[2], argv[3], argv[4], argv[5], argv[6], argc > 7 ? std::atoi(argv[7]) : 0,
                              argc > 8 ? std::atoi(argv[8]) : -1);
        if (command == "bench" && argc >= 4) return bench(argv[2], argv[3], argc > 4 ? std::atoi(argv[4]) : 200);
        if (command == "agnostic" && argc == 5) {
            writeBlob(argv[4], agnosticOfPhoto(argv[2], argv[3]));
            return 0;
        }
        if (command == "photokept" && argc == 6) return photoKeptOfPhoto(argv[2], argv[3], argv[4], argv[5]);
        if (command == "compose" && argc == 5) {
            vton::writeImage(argv[4], vton::CpVton::compose(readBlob(argv[2]), readBlob(argv[3])));
            return 0;
        }
        std::cerr << "error: unknown command or wrong arguments (see the head of test_virtual_try_on.cpp)" << std::endl;
        return 2;
    } catch (const std::exception& err) {
        std::cerr << "error: " << err.what() << std::endl;
        return 1;
    }
}
