"""SPAct (Dave et al., CVPR 2022): a UNet anonymizer against a self-supervised privacy branch.

* ``f_A`` is a per-frame UNet with a sigmoid output (:class:`UNet`, :class:`FrameUNet`, in
  :mod:`anonpriv.baselines.spact.anonymizer`, which needs torch alone). For the first
  ``reconstruction_epochs`` epochs it is trained only to reconstruct its input (L1), so the minimax
  starts from (nearly) the identity.
* The privacy adversary needs no privacy labels: :class:`SelfSupervisedPrivacyBranch` is a 2D
  encoder plus a :class:`ProjectionHead` trained with the NT-Xent contrastive loss
  (:func:`nt_xent_loss`, temperature 0.1) on two augmented views of one frame per clip. If the
  anonymized frames still identify themselves (the branch matches the two views of a frame among
  all others), private appearance survives.
* After the warm-up, each training step alternates: the anonymizer step minimises
  ``CE(action) - ssl_weight * NT-Xent`` through the frozen utility model and SSL branch; then the
  utility model (CE) and the SSL branch (NT-Xent) update on the detached anonymized clip.

During the warm-up the utility model and the SSL branch already train on the (reconstructed,
detached) output, which plays the role of SPAct's pre-training of both on raw video.

No privacy labels train ``f_A`` or the SSL branch. The labelled privacy model (``privacy_model``)
is still trained, on the detached anonymized clip in its own phase, purely as a monitor, so that
the shared metrics callback has privacy logits; it never sends a gradient to ``f_A``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from anonpriv.methods.base import SMALL_BATCH_FIX, AnonymizationMethod, LossTerms, Phase
from anonpriv.models import create_privacy_model

from anonpriv.baselines.spact.anonymizer import spact_anonymizer


# -- the self-supervised privacy branch ------------------------------------------------------------
def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent (SimCLR's normalised temperature-scaled cross entropy) of two views.

    ``z1[i]`` and ``z2[i]`` (N, D) embed two views of sample ``i``. All 2N embeddings are
    L2-normalised; for each one, its partner is the positive and the other 2N - 2 are negatives:
    ``l_i = -log(exp(s_ip / t) / sum_{k != i} exp(s_ik / t))`` with cosine similarities ``s``. The
    result is the mean of ``l`` over the 2N anchors.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"nt_xent_loss needs two (N, D) batches of the same shape, got {tuple(z1.shape)} "
                         f"and {tuple(z2.shape)}.")
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be positive (SPAct uses 0.1).")
    n = z1.shape[0]
    if n < 2:
        raise ValueError(f"nt_xent_loss needs at least 2 samples (each one's negatives are the others), got {n}. "
                         f"Fix: {SMALL_BATCH_FIX}.")
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.t() / temperature
    self_pairs = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_pairs, float("-inf"))
    partners = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, partners)


class ProjectionHead(nn.Module):
    """SimCLR's projection MLP: Linear -> ReLU -> Linear, on top of the encoder's features."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden_features), nn.ReLU(inplace=True), nn.Linear(hidden_features, out_features)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


class FrameAugment(nn.Module):
    """Random, differentiable augmentations of images (N, C, H, W) in [0, 1] for contrastive views.

    Random resized crop (area fraction in ``crop_area``, square, anywhere in the frame), horizontal
    flip, brightness and contrast jitter and random grayscale, all with tensor ops so the gradient
    reaches the anonymizer. Draws from the global torch RNG (seeded by ``seed_everything``).
    """

    def __init__(
        self,
        crop_area: tuple[float, float] = (0.4, 1.0),
        flip_p: float = 0.5,
        brightness: float = 0.4,
        contrast: float = 0.4,
        grayscale_p: float = 0.2,
    ) -> None:
        super().__init__()
        low, high = crop_area
        if not 0 < low <= high <= 1:
            raise ValueError(f"crop_area={crop_area} must satisfy 0 < low <= high <= 1.")
        self.crop_area = (float(low), float(high))
        self.flip_p, self.brightness, self.contrast, self.grayscale_p = flip_p, brightness, contrast, grayscale_p

    def _uniform(self, n: int, low: float, high: float, like: torch.Tensor) -> torch.Tensor:
        return torch.empty(n, device=like.device, dtype=like.dtype).uniform_(low, high)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        n = images.shape[0]
        # Random resized crop + flip as one affine resampling.
        scale = self._uniform(n, *self.crop_area, images).sqrt()
        shift_x = self._uniform(n, -1.0, 1.0, images) * (1 - scale)
        shift_y = self._uniform(n, -1.0, 1.0, images) * (1 - scale)
        flip = torch.where(self._uniform(n, 0.0, 1.0, images) < self.flip_p, -1.0, 1.0).to(images.dtype)
        theta = torch.zeros(n, 2, 3, device=images.device, dtype=images.dtype)
        theta[:, 0, 0], theta[:, 0, 2] = scale * flip, shift_x
        theta[:, 1, 1], theta[:, 1, 2] = scale, shift_y
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        x = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
        # Colour jitter.
        x = x * self._uniform(n, 1 - self.brightness, 1 + self.brightness, x).view(n, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * self._uniform(n, 1 - self.contrast, 1 + self.contrast, x).view(n, 1, 1, 1) + mean
        if x.shape[1] == 3:
            gray = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:]).expand_as(x)
            to_gray = (self._uniform(n, 0.0, 1.0, x) < self.grayscale_p).view(n, 1, 1, 1)
            x = torch.where(to_gray, gray, x)
        return x.clamp(0.0, 1.0)


class SelfSupervisedPrivacyBranch(nn.Module):
    """SPAct's label-free privacy adversary: 2D encoder + projection head, trained with NT-Xent.

    :meth:`forward` takes a clip (B, C, T, H, W), picks one random frame of each clip, makes two
    augmented views of it and returns the NT-Xent loss of their projections (a scalar).

    Args:
        encoder_model, encoder_kwargs: a registered privacy model (``anonpriv.models``) used as the
            2D encoder; its ``feature_dim`` outputs are the features.
        feature_dim: encoder output size.
        projection_dim: size of the projected embedding the loss compares.
        temperature: NT-Xent temperature (SPAct: 0.1).
    """

    def __init__(
        self,
        encoder_model: str = "frame_cnn_tiny",
        encoder_kwargs: dict | None = None,
        feature_dim: int = 128,
        projection_dim: int = 64,
        temperature: float = 0.1,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature={temperature} must be positive (SPAct uses 0.1).")
        self.encoder = create_privacy_model(encoder_model, feature_dim, encoder_kwargs)
        self.projection = ProjectionHead(feature_dim, feature_dim, projection_dim)
        self.augment = FrameAugment()
        self.temperature = temperature

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Projected embeddings (N, projection_dim) of images (N, C, H, W)."""
        return self.projection(self.encoder(images.unsqueeze(2)))  # a one-frame clip per image

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, t = video.shape[0], video.shape[2]
        which = torch.randint(t, (b,), device=video.device)
        frames = video[torch.arange(b, device=video.device), :, which]  # (B, C, H, W)
        return nt_xent_loss(self.embed(self.augment(frames)), self.embed(self.augment(frames)), self.temperature)


# -- the method -------------------------------------------------------------------------------------
class SPActBaseline(AnonymizationMethod):
    """SPAct on the common base: reconstruction warm-up, then the self-supervised minimax.

    Phases of every training step (each with its own optimizer):

    1. ``anonymizer`` (``f_A`` only): ``L1(f_A(x), x)`` during the first ``reconstruction_epochs``
       epochs, afterwards ``CE(f_T(f_A(x)), y) - ssl_weight * NT-Xent(f_A(x))`` through the frozen
       utility model and SSL branch;
    2. ``utility`` (``f_T``): ``CE`` on the detached anonymized clip;
    3. ``privacy_ssl`` (the SSL branch): NT-Xent on the detached anonymized clip;
    4. ``privacy_model`` (a monitor only): BCE with the privacy labels on the detached clip, so
       the metrics callback can report privacy leakage; no privacy label reaches ``f_A`` or the
       SSL branch.

    Args:
        unet_width, unet_depth: size of the per-frame UNet.
        reconstruction_epochs: epochs of the L1 warm-up of ``f_A``.
        ssl_weight: weight ``w`` of the NT-Xent term the anonymizer maximises (SPAct: 1).
        temperature: NT-Xent temperature (SPAct: 0.1).
        ssl_model, ssl_kwargs: registered privacy model used as the SSL branch's 2D encoder.
        ssl_feature_dim, projection_dim: encoder output and projection sizes.
        anonymizer_lr, ssl_lr: learning rates of those phases (default: ``lr``).
        **kwargs: the common method options (:class:`~anonpriv.methods.AnonymizationMethod`);
            ``adversarial_loss`` must stay ``none``: SPAct's adversary is the SSL branch. SPAct's
            paper trains every part with Adam at 1e-4.

    Training needs batches of at least 2 clips (``min_train_batch_size``): NT-Xent contrasts each
    clip with the others. The DataModule's ``drop_last`` (on by default) guarantees that whenever
    ``batch_size >= 2`` and the training set has at least 2 clips; a smaller batch is refused with
    an error naming that fix.
    """

    min_train_batch_size = 2

    def __init__(
        self,
        unet_width: int = 16,
        unet_depth: int = 2,
        reconstruction_epochs: int = 2,
        ssl_weight: float = 1.0,
        temperature: float = 0.1,
        ssl_model: str = "frame_cnn_tiny",
        ssl_kwargs: dict | None = None,
        ssl_feature_dim: int = 128,
        projection_dim: int = 64,
        anonymizer_lr: float | None = None,
        ssl_lr: float | None = None,
        **kwargs,
    ) -> None:
        if kwargs.get("adversarial_loss", "none") != "none":
            raise ValueError(
                "SPAct's privacy adversary is its self-supervised branch, not the labelled privacy model: "
                "leave adversarial_loss at 'none' and set ssl_weight instead."
            )
        if reconstruction_epochs < 0:
            raise ValueError(f"reconstruction_epochs={reconstruction_epochs} must be >= 0 (0 skips the warm-up).")
        if ssl_weight < 0:
            raise ValueError(f"ssl_weight={ssl_weight} must be >= 0.")
        super().__init__(anonymizer=spact_anonymizer(unet_width, unet_depth), **kwargs)
        self.privacy_ssl = SelfSupervisedPrivacyBranch(
            ssl_model, ssl_kwargs, ssl_feature_dim, projection_dim, temperature
        )

    @property
    def in_reconstruction_warmup(self) -> bool:
        """True during the first ``reconstruction_epochs`` epochs (and before any training)."""
        return self.current_epoch < self.hparams.reconstruction_epochs

    def phases(self) -> list[Phase]:
        hp = self.hparams
        return [
            Phase("anonymizer", ("anonymizer",), self.anonymizer_step_losses, lr=hp.anonymizer_lr),
            Phase("utility", ("utility",), self.utility_losses),
            Phase("privacy_ssl", ("privacy_ssl",), self.ssl_losses, lr=hp.ssl_lr),
            Phase("privacy_model", ("privacy_model",), self.privacy_model_losses, lr=hp.privacy_lr),
        ]

    def anonymizer_step_losses(self, batch: Mapping, state: dict) -> LossTerms:
        video = self.anonymized(batch, state)["video"]
        if self.in_reconstruction_warmup:
            return {"reconstruction": F.l1_loss(video, batch["video"])}
        return {
            "action": F.cross_entropy(self.utility(video), batch["action"]),
            "privacy_ssl": -self.hparams.ssl_weight * self.privacy_ssl(video),
        }

    def utility_losses(self, batch: Mapping, state: dict) -> LossTerms:
        video = self.anonymized(batch, state)["video"].detach()
        return {"action": F.cross_entropy(self.utility(video), batch["action"])}

    def ssl_losses(self, batch: Mapping, state: dict) -> LossTerms:
        video = self.anonymized(batch, state)["video"].detach()
        return {"nt_xent": self.privacy_ssl(video)}
