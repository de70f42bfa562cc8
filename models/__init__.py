"""The model data (models.yml is the registry; the GMM and TOM trained here; the fitted BlazePose
calibration and parsing classifier) and the downloader, download_models.py."""
