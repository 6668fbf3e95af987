"""Case studies (``p2pvar study NAME``): run specs, the executor, and each study's tables."""
