"""Public AWS list prices used by the cost model: one dated table, region us-east-1, USD, free tiers ignored.

Compiled 2026-11-26 from the pricing pages cited beside each group. Prices change: check the pages before quoting a
figure, and update PRICES_AS_OF with any change. A month is AWS's billing month of 730 hours.
"""

from __future__ import annotations

from typing import Final

PRICES_AS_OF: Final = "2026-11-26"
REGION: Final = "us-east-1"
HOURS_PER_MONTH: Final = 730

# --- AWS Secrets Manager: https://aws.amazon.com/secrets-manager/pricing/ ----------------------------------------
SECRET_PER_MONTH: Final = 0.40  # per secret per month (prorated for secrets stored less than a month)
SECRETS_API_PER_10K: Final = 0.05  # per 10,000 API calls

# --- AWS KMS: https://aws.amazon.com/kms/pricing/ -----------------------------------------------------------------
KMS_KEY_PER_MONTH: Final = 1.00  # per customer managed key per month
# Automatic rotation: the first and second rotation each add $1/month; later rotations add nothing (2024 change).
KMS_ROTATION_PER_MONTH: Final = 1.00
KMS_ROTATIONS_CHARGED: Final = 2
KMS_REQUESTS_PER_10K: Final = 0.03  # symmetric requests (Decrypt, GenerateDataKey, ...)

# --- Amazon CloudWatch: https://aws.amazon.com/cloudwatch/pricing/ ------------------------------------------------
CUSTOM_METRIC_PER_MONTH: Final = 0.30  # first 10,000 metrics; prorated by the hour, only hours with data
STANDARD_ALARM_PER_METRIC: Final = 0.10  # standard resolution (period >= 60 s), per metric in the alarm
ANOMALY_ALARM_METRICS: Final = 3  # an anomaly detection alarm is billed as 3 metrics: the metric and the band's two
# An alarm on a Metrics Insights query is billed per metric the query analyzes (standard resolution).
METRICS_INSIGHTS_ALARM_PER_METRIC_ANALYZED: Final = 0.10
DASHBOARD_PER_MONTH: Final = 3.00  # per dashboard per month
PUT_METRIC_DATA_PER_1K: Final = 0.01  # per 1,000 requests
GET_METRIC_DATA_PER_1K_METRICS: Final = 0.01  # per 1,000 metrics requested
LOGS_INGESTION_PER_GB: Final = 0.50  # standard log class (Lambda logs: first tier)
LOGS_STORAGE_PER_GB_MONTH: Final = 0.03  # archived (compressed) bytes per month

# --- AWS Lambda: https://aws.amazon.com/lambda/pricing/ -----------------------------------------------------------
LAMBDA_REQUESTS_PER_1M: Final = 0.20
LAMBDA_ARM64_PER_GB_SECOND: Final = 0.0000133334  # first 7.5 billion GB-seconds per month

# --- Amazon EventBridge Scheduler: https://aws.amazon.com/eventbridge/pricing/ -------------------------------------
SCHEDULER_INVOCATIONS_PER_1M: Final = 1.00  # after 14 million free invocations per month

# --- Amazon SNS: https://aws.amazon.com/sns/pricing/ --------------------------------------------------------------
SNS_PUBLISHES_PER_1M: Final = 0.50  # standard topic requests
SNS_EMAIL_PER_100K: Final = 2.00  # email notifications
SNS_HTTPS_PER_1M: Final = 0.60  # HTTP/S notifications

# --- AWS Systems Manager Parameter Store: https://aws.amazon.com/systems-manager/pricing/ --------------------------
SSM_STANDARD_PARAMETER_PER_MONTH: Final = 0.0  # standard parameters and standard-throughput API calls are free
