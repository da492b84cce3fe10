"""SQLAlchemy models: typed declarative classes, one naming convention, no queries."""

from models.audit import AuditChainHead, AuditLog, ComplianceReport, SecurityIncident
from models.aws_profile import AwsAccount, AwsProfile
from models.base import Base
from models.budget import Budget
from models.collection import CollectionRun, CommitmentReport, CostDimensionDaily, CostForecast, Recommendation
from models.cost import (
    AllocationTagAlias,
    CostAccountSource,
    CostAllocationRollup,
    CostAnomaly,
    CostDailyRollup,
    CostFact,
    CostMonthlyRollup,
    CostPeriodSpan,
    CostSummaryRollup,
    CostTeamDailyRollup,
    DataVersion,
    ImportBatch,
)
from models.report import DashboardConfig, SavedReport
from models.resource import Resource, ResourceUtilisation
from models.task import Schedule, Task, TaskMetrics, TaskResult
from models.user import (
    ApiToken,
    LoginAttempt,
    MFADevice,
    ProfileGrant,
    Role,
    User,
    UserRole,
    UserSession,
)

__all__ = [
    "AllocationTagAlias",
    "ApiToken",
    "AuditChainHead",
    "AuditLog",
    "AwsAccount",
    "AwsProfile",
    "Base",
    "Budget",
    "CollectionRun",
    "CommitmentReport",
    "CostDimensionDaily",
    "CostForecast",
    "Recommendation",
    "ComplianceReport",
    "CostAccountSource",
    "CostAllocationRollup",
    "CostAnomaly",
    "CostDailyRollup",
    "CostFact",
    "CostMonthlyRollup",
    "CostPeriodSpan",
    "CostSummaryRollup",
    "CostTeamDailyRollup",
    "DashboardConfig",
    "DataVersion",
    "ImportBatch",
    "LoginAttempt",
    "MFADevice",
    "ProfileGrant",
    "Resource",
    "ResourceUtilisation",
    "Role",
    "SavedReport",
    "Schedule",
    "SecurityIncident",
    "Task",
    "TaskMetrics",
    "TaskResult",
    "User",
    "UserRole",
    "UserSession",
]
