"""Tooling beside the try-on scripts: the model downloader (models.yml is its registry), the Caffe -> ONNX
converter, the GMM converter and the seeded synthetic stand-ins. The runtime scripts import from here
only to fetch a missing model, to convert OpenPose on OpenCV 5 and to build --synthetic models."""
