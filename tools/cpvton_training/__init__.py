"""tools/train_cpvton.py's parts, laid out as CP-VTON's own code: networks.py (GMM, TOM, TPS warp), data.py
(the training pairs, cp_dataset.py's part), losses.py, loop.py (a stage's training), settings.py (config.json
and resuming) and export.py (ONNX for cv.dnn)."""
