"""ViT building blocks written with torch alone, shared by every transformer in anonpriv.

The token-pruning anonymizer (:mod:`anonpriv.methods.token_pruning`) and the tubelet ViT action
model (:mod:`anonpriv.models.token_vit`) both build on :class:`ViTBlock`. Parameter names, their
order and the LayerNorm eps (1e-6) follow timm's ViT block, so the blocks of a 2D timm ViT load
with ``load_state_dict`` and, with :func:`anonpriv.layers.init.init_vit_weights`, a seed gives
timm's initial weights; importing these layers does not import timm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    """Multi-head self-attention: one ``qkv`` projection, heads of ``dim / num_heads``, an output
    projection (``qkv`` / ``proj``, timm's names)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be a multiple of num_heads={num_heads}.")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, N, _ = x.shape
        return self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                attn_mask: torch.Tensor | None) -> torch.Tensor:
        B, _, N, _ = q.shape
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                             dropout_p=self.attn_drop.p if self.training else 0.0)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(B, N, -1)))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attended tokens (B, N, D), through PyTorch's fused attention. ``attn_mask`` is added to
        the attention logits (e.g. ``-inf`` on padded keys), broadcast to (B, heads, N, N)."""
        return self._attend(*self._heads(x), attn_mask)

    def forward_with_cls_rows(self, x: torch.Tensor, num_cls: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        """The attended tokens and the head-averaged attention rows of the first ``num_cls`` tokens
        (B, num_cls, N), computed before attention dropout so a pruning score is not noisy."""
        q, k, v = self._heads(x)
        cls_rows = ((q[:, :, :num_cls] * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1).mean(dim=1)
        return self._attend(q, k, v, None), cls_rows


class FeedForward(nn.Module):
    """The block's MLP: ``fc1`` -> GELU -> ``fc2`` (timm's parameter names)."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a sample's residual branch with probability ``rate`` and
    scale the survivors by ``1 / (1 - rate)``; the identity in evaluation."""

    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)


class ViTBlock(nn.Module):
    """A pre-norm ViT block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``.

    ``forward`` runs both halves (with an optional additive attention mask). For token pruning the
    halves are also callable apart: :meth:`attention_half` returns the attention rows of the first
    ``num_cls`` tokens as well, and a pruning stage can drop tokens before :meth:`mlp_half`
    (EViT-style: after attention + residual, before the MLP).

    Regularisation, all off by default and active in training only, with timm's ``Block`` argument
    names: ``proj_drop`` (dropout on the attention's output projection and inside the MLP),
    ``attn_drop`` (dropout on the attention probabilities) and ``drop_path`` (stochastic depth).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_path: float = 0.0, eps: float = 1e-6, proj_drop: float = 0.0, attn_drop: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = SelfAttention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop)
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), drop=proj_drop)
        self.drop_path2 = DropPath(drop_path)

    def attention_half(self, x: torch.Tensor, num_cls: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        out, cls_rows = self.attn.forward_with_cls_rows(self.norm1(x), num_cls)
        return x + self.drop_path1(out), cls_rows

    def mlp_half(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path2(self.mlp(self.norm2(x)))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.mlp_half(x + self.drop_path1(self.attn(self.norm1(x), attn_mask)))
