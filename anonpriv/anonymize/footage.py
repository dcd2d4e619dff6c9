"""Strengths of the training-free methods for camera footage, where the training defaults are too weak.

The defaults of blur and downsample are sized in pixels for small clips (blur: a 13-tap kernel of
sigma 10 px, the papers' StrongBlur on ~100-px person crops, and sigma 1.4 px in
``configs/method/blur.yaml`` for the synthetic 64-px figures; downsample: factor 2). On camera footage
a face is hundreds of pixels tall, and after those the face detector still finds a face in every
frame (issue 28: CenterFace at threshold 0.5 on 1080p clips after sigma 1.4 or factor 2: 100% of the
frames). So
``anonpriv anonymize --method NAME`` with none of the method's strength options applies
:data:`FOOTAGE_DEFAULTS`, sized relative to the frame, calibrated on
:func:`anonpriv.data.hd_footage.face_scene_frames` (faces from 5% to 55% of the frame height) at
1920 x 1080 and 320 x 240 (``benchmarks/footage.md``):

* ``blur``: ``relative_sigma=0.03`` (sigma 3% of the frame height: 32 px at 1080p, 7 px at 240p);
  the detector's highest score dropped from 0.93 / 0.89 (raw) to 0.06 / 0.24 (at 2%: 0.10 / 0.44).
* ``downsample``: ``target_height=32`` (frames pass through 32 px of height, as the paper's
  Downsample-4x takes 112-px crops to 28); highest score 0.04 / 0.11 (at 45 px: 0.02 / 0.58).
* ``face_blur``: ``margin=0.4`` (each box grown by 40% of its size per side; training default 0.2):
  with 0.2 the blurred box kept a face-shaped blob the detector scored up to 0.44 on 1080p.

Any option given with ``--method-arg`` replaces these, and :func:`weak_setting` warns when what is
given is weaker than the calibration. Training (``anonpriv fit``) keeps the methods' own defaults.
"""

from __future__ import annotations

#: per method: the options applied when none of the method's strength options is given
FOOTAGE_DEFAULTS: dict[str, dict] = {
    "blur": {"relative_sigma": 0.03},
    "downsample": {"target_height": 32},
    "face_blur": {"margin": 0.4},
}
#: per method: the options that set its strength (any one of them given: no footage default)
STRENGTH_OPTIONS: dict[str, frozenset[str]] = {
    "blur": frozenset({"relative_sigma", "sigma", "kernel_size"}),
    "downsample": frozenset({"target_height", "factor"}),
    "face_blur": frozenset({"margin"}),
}
#: weakest calibrated settings: below them the detector still found faces on 1080p test footage
WEAKEST = {"blur_relative_sigma": 0.02, "downsample_height": 64, "face_blur_margin": 0.3}


def footage_options(method: str | None, method_args: dict) -> tuple[dict, dict]:
    """``(options to build the method with, the footage defaults that were added)`` for
    ``--method method`` with ``--method-arg`` options ``method_args``."""
    args = dict(method_args)
    if method not in FOOTAGE_DEFAULTS or STRENGTH_OPTIONS[method] & set(args):
        return args, {}
    added = dict(FOOTAGE_DEFAULTS[method])
    return {**added, **args}, added


def weak_setting(method: str | None, anonymizer, height: int) -> str | None:
    """A warning when ``anonymizer`` (the built ``f_A`` of ``--method method``: its strength as built,
    defaults included) is weaker on frames ``height`` pixels tall than the calibrated footage strength
    (faces stayed detectable), else ``None``."""
    if method == "blur":
        sigma = anonymizer.sigma_at(height)
        least = WEAKEST["blur_relative_sigma"] * height
        if sigma < least:
            return (f"blur sigma {sigma:.1f} px is weak on {height}-px frames (faces stayed detectable below "
                    f"{least:.0f} px, 2% of the height): drop the option for the footage default "
                    f"(relative_sigma={FOOTAGE_DEFAULTS['blur']['relative_sigma']}) or check with --face-audit")
    if method == "downsample":
        low = anonymizer.low_size(height, height)[0]
        if low > WEAKEST["downsample_height"]:
            return (f"downsampling {height}-px frames to {low} px is weak (faces stayed detectable above "
                    f"{WEAKEST['downsample_height']} px): drop the option for the footage default "
                    f"(target_height={FOOTAGE_DEFAULTS['downsample']['target_height']}) or check with --face-audit")
    if method == "face_blur" and anonymizer.margin < WEAKEST["face_blur_margin"]:
        return (f"face_blur margin {anonymizer.margin} leaves face-shaped blobs the detector still scores "
                f"on large faces: drop the option for the footage default "
                f"(margin={FOOTAGE_DEFAULTS['face_blur']['margin']}) or check with --face-audit")
    return None
