"""Tooling, not imported by the try-on at run time: the GMM converter, the fitters of the calibration and of
the MediaPipe parsing classifier, the seeded synthetic stand-ins, the float32 exporter and the training code."""
