"""The protocol's metrics and the shared metrics callback."""

from anonpriv.metrics.callback import PrivacyUtilityMetrics, write_results
from anonpriv.metrics.functional import (
    PrivacyScores,
    action_top1,
    average_by_video,
    positive_rates,
    privacy_scores,
)

__all__ = [
    "PrivacyScores",
    "PrivacyUtilityMetrics",
    "action_top1",
    "average_by_video",
    "positive_rates",
    "privacy_scores",
    "write_results",
]
