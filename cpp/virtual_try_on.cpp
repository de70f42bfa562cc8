// Virtual try-on (CP-VTON) with OpenCV dnn, C++ sample over virtual_try_on.hpp.
//
//   virtual_try_on -i person.jpg -c cloth.jpg --keypoints person_keypoints.json --labels person_parse.png
//                  [-o result.png] [--gmm cp_vton_gmm.onnx] [--tom cp_vton_tom.onnx]
//                  [--backend default|opencv|cuda|openvino|vkcom] [--target cpu|opencl|...] [--show]
//
// The same 256x192 result as `python3 virtual_try_on.py ... --keypoints ... --labels ...` (network size).
// Pose and parsing come from files (OpenPose JSON, LIP parsing PNG): the pose and parsing networks are
// not part of the C++ sample. Exit status: 0 done, 1 runtime failure, 2 bad usage or input; every
// failure is one `error: ...` line on stderr and leaves no output file behind.
#include "virtual_try_on.hpp"

#include <opencv2/core/utils/logger.hpp>
#include <opencv2/highgui.hpp>

#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace {

const char* const kUsage =
    "usage: virtual_try_on -i PERSON -c CLOTH --keypoints JSON --labels PNG [-o OUT] [--gmm FILE] [--tom FILE]\n"
    "                      [--backend default|opencv|cuda|openvino|vkcom] [--target cpu|cpu_fp16|opencl|"
    "opencl_fp16|cuda|cuda_fp16|npu|vulkan|myriad] [--show]\n"
    "Virtual try-on (CP-VTON) with OpenCV dnn: dresses the person of --input in the garment of --cloth\n"
    "(256x192 result). Exit status: 0 done, 1 runtime failure, 2 bad usage or input.\n"
    "  -i, --input      person photo\n"
    "  -c, --cloth      garment photo (on a plain background)\n"
    "  -o, --output     result image (default: <person>_<cloth>_tryon.png, printed)\n"
    "  --keypoints      OpenPose-style JSON of the person photo ({\"people\": [{\"pose_keypoints\": [...]}]})\n"
    "  --labels         LIP parsing of the person photo (grey label, palette or colour PNG)\n"
    "  --gmm, --tom     CP-VTON models (default: cp_vton_gmm.onnx, cp_vton_tom.onnx in $OPENCV_TRYON_MODELS\n"
    "                   or ./models); the GMM may hold the published custom Correlation node (CPU) or be\n"
    "                   the standard-op file of tools/convert_gmm.py (any backend); the TOM's metadata names\n"
    "                   its person representation (cp-vton: 25 channels, also without the key; photo-kept: 30)\n"
    "  --backend, --target  dnn backend and target (default: default, cpu)\n"
    "  --show           also show the result in a window\n";

struct Options {
    std::map<std::string, std::string> values;
    bool show = false;
};

// -x VALUE, --name VALUE and --name=VALUE; one UsageError for anything else
Options parseArguments(int argc, char** argv) {
    static const std::map<std::string, std::string> names = {
        {"-i", "input"}, {"--input", "input"}, {"-c", "cloth"}, {"--cloth", "cloth"},
        {"-o", "output"}, {"--output", "output"}, {"--gmm", "gmm"}, {"--tom", "tom"},
        {"--keypoints", "keypoints"}, {"--labels", "labels"}, {"--backend", "backend"}, {"--target", "target"}};
    Options options;
    options.values["backend"] = "default";
    options.values["target"] = "cpu";
    for (int i = 1; i < argc; i++) {
        std::string arg = argv[i], value;
        bool hasValue = false;
        const size_t eq = arg.find('=');
        if (arg.compare(0, 2, "--") == 0 && eq != std::string::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            hasValue = true;
        }
        if (arg == "--show" && !hasValue) {
            options.show = true;
            continue;
        }
        const auto name = names.find(arg);
        if (name == names.end()) throw vton::UsageError("unknown argument: " + std::string(argv[i]) + " (see --help)");
        if (!hasValue) {
            if (i + 1 >= argc) throw vton::UsageError("argument " + arg + " expects a value");
            value = argv[++i];
        }
        options.values[name->second] = value;
    }
    for (const char* required : {"input", "cloth", "keypoints", "labels"})
        if (!options.values.count(required))
            throw vton::UsageError(std::string("the argument --") + required + " is required (see --help)");
    return options;
}

std::pair<int, int> backendTarget(const std::string& backendName, const std::string& targetName) {
    using namespace cv::dnn;
    const std::map<std::string, int> backends = {
        {"default", DNN_BACKEND_DEFAULT}, {"opencv", DNN_BACKEND_OPENCV}, {"cuda", DNN_BACKEND_CUDA},
        {"openvino", DNN_BACKEND_INFERENCE_ENGINE}, {"vkcom", DNN_BACKEND_VKCOM}};
    const std::map<std::string, int> targets = {
        {"cpu", DNN_TARGET_CPU}, {"opencl", DNN_TARGET_OPENCL}, {"opencl_fp16", DNN_TARGET_OPENCL_FP16},
        {"cuda", DNN_TARGET_CUDA}, {"cuda_fp16", DNN_TARGET_CUDA_FP16}, {"vulkan", DNN_TARGET_VULKAN},
        {"myriad", DNN_TARGET_MYRIAD}, {"npu", DNN_TARGET_NPU},
#if CV_VERSION_MAJOR > 4 || (CV_VERSION_MAJOR == 4 && CV_VERSION_MINOR >= 9)  // surely there by 4.9
        {"cpu_fp16", DNN_TARGET_CPU_FP16},
#endif
    };
    const auto backend = backends.find(backendName);
    if (backend == backends.end()) throw vton::UsageError("unknown backend '" + backendName + "'");
    const auto target = targets.find(targetName);
    if (target == targets.end()) throw vton::UsageError("unknown target '" + targetName + "'");
    std::vector<Target> available;
    try {
        available = getAvailableTargets(Backend(backend->second));
    } catch (const cv::Exception&) {
    }
    if (std::find(available.begin(), available.end(), Target(target->second)) == available.end())
        throw vton::UsageError("backend " + backendName + " with target " + targetName +
                               " is not available in this OpenCV " CV_VERSION " build");
    return {backend->second, target->second};
}

std::string stem(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    const size_t dot = name.find_last_of('.');
    return dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
}

void checkOutputPath(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    const std::string directory = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    struct stat info;
    if (::stat(directory.c_str(), &info) != 0 || !S_ISDIR(info.st_mode))
        throw vton::UsageError("output directory does not exist: " + directory);
    if (::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode))
        throw vton::UsageError("output path is a directory: " + path);
    if (!cv::haveImageWriter(path))
        throw vton::UsageError("cannot write images of type of " + path + " (use .png, .jpg, ...)");
}

void checkSize(const cv::Mat& image, const std::string& what, const std::string& part) {
    if (image.rows < vton::kMinSize.height || image.cols < vton::kMinSize.width)
        throw vton::UsageError(what + " is too small: " + part + cv::format(" is %dx%d, at least %dx%d is needed",
                               image.cols, image.rows, vton::kMinSize.width, vton::kMinSize.height));
}

std::string modelPath(const std::map<std::string, std::string>& values, const std::string& key,
                      const std::string& name) {
    const auto given = values.find(key);
    if (given != values.end()) return given->second;
    const char* env = std::getenv("OPENCV_TRYON_MODELS");
    const std::string path = std::string(env && *env ? env : "models") + "/" + name;
    struct stat info;
    if (::stat(path.c_str(), &info) != 0)
        throw vton::UsageError("model file " + path + " not found; get it with: python3 models/download_models.py " +
                               name + " (or pass its path with --" + key + ")");
    return path;
}

int run(int argc, char** argv) {
    // OpenCV's own log lines would add to the one-line error; OPENCV_LOG_LEVEL still overrides
    if (!std::getenv("OPENCV_LOG_LEVEL")) cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
    for (int i = 1; i < argc; i++)
        if (std::string(argv[i]) == "-h" || std::string(argv[i]) == "--help") {
            std::cout << kUsage;
            return 0;
        }
    const Options options = parseArguments(argc, argv);
    const auto& v = options.values;
    const std::pair<int, int> backend = backendTarget(v.at("backend"), v.at("target"));
    const cv::Mat person = vton::readImage(v.at("input"), "person photo");
    const cv::Mat cloth = vton::readImage(v.at("cloth"), "cloth photo");
    const std::string output =
        v.count("output") ? v.at("output") : stem(v.at("input")) + "_" + stem(v.at("cloth")) + "_tryon.png";
    checkOutputPath(output);
    checkSize(vton::cropToRatio(person), "person photo " + v.at("input"), "its 256:192 centre crop");
    checkSize(cloth, "cloth photo " + v.at("cloth"), "it");
    const cv::Mat keypoints = vton::readKeypointsJson(v.at("keypoints"));
    const cv::Mat labels = vton::readParsing(v.at("labels"));

    vton::CpVton model(modelPath(v, "gmm", "cp_vton_gmm.onnx"), modelPath(v, "tom", "cp_vton_tom.onnx"),
                       backend.first, backend.second);
    const cv::Mat result = vton::tryOnPhoto(model, person, cloth, keypoints, labels);
    vton::writeImage(output, result);
    std::cout << output << std::endl;
    if (options.show) {
        cv::Mat panel;
        cv::hconcat(std::vector<cv::Mat>{vton::resizeToModel(vton::cropToRatio(person)), vton::resizeToModel(cloth),
                                         result}, panel);
        cv::imshow("Virtual try-on", panel);
        cv::waitKey();
    }
    return 0;
}

std::string firstLine(const std::string& text) {
    size_t begin = text.find_first_not_of(" \n");
    if (begin == std::string::npos) return "unknown failure";
    return text.substr(begin, text.find('\n', begin) - begin);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const vton::UsageError& err) {
        std::cerr << "error: " << err.what() << std::endl;
        return 2;
    } catch (const vton::RuntimeFailure& err) {
        std::cerr << "error: " << err.what() << std::endl;
        return 1;
    } catch (const cv::Exception& err) {
        std::cerr << "error: OpenCV: " << firstLine(err.err) << std::endl;
        return 1;
    } catch (const std::bad_alloc&) {
        std::cerr << "error: out of memory" << std::endl;
        return 1;
    } catch (const std::exception& err) {
        std::cerr << "error: " << firstLine(err.what()) << std::endl;
        return 1;
    }
}
