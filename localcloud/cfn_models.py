"""CloudFormation resource types moto 5.2.5 does not create, filled in for the local cloud.

moto's CloudFormation skips AWS::SNS::Subscription (so a SAM `SNS` event would never reach its function),
AWS::SNS::TopicPolicy, AWS::SES::ConfigurationSet, AWS::SecretsManager::Secret and AWS::CloudWatch::Alarm, and has
no End User Messaging SMS at all (AWS::SMSVOICE::ConfigurationSet, AWS::SMSVOICE::ProtectConfiguration). These
small models create the real thing in moto's backends through their own APIs, or in `localcloud.smsvoice` for End
User Messaging. Registered by `localcloud.patches.apply`; listed in its INTERNALS check.
"""

from __future__ import annotations

import json
from typing import Any

from moto.core.common_models import CloudFormationModel


class _LocalModel:
    """Shared behaviour. Each model also names CloudFormationModel as a direct base: moto finds models
    through CloudFormationModel.__subclasses__(), which lists direct subclasses only."""

    physical_resource_id: str

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str,  # type: ignore[misc]
                                        cloudformation_json: dict[str, Any], account_id: str, region_name: str
                                        ) -> Any:
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],  # type: ignore[misc]
                                        account_id: str, region_name: str) -> None:
        return None

    def is_created(self) -> bool:
        return True


class LocalSnsSubscription(_LocalModel, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::Subscription"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],  # type: ignore[misc]
                                        account_id: str, region_name: str, **kwargs: Any) -> LocalSnsSubscription:
        from moto.sns.models import sns_backends

        props = cloudformation_json["Properties"]
        topic_arn = props["TopicArn"]
        backend = sns_backends[account_id][topic_arn.split(":")[3]]
        subscription = backend.subscribe(topic_arn, props["Endpoint"], props["Protocol"])
        model = cls()
        model.physical_resource_id = subscription.arn
        return model


class LocalSnsTopicPolicy(_LocalModel, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::TopicPolicy"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],  # type: ignore[misc]
                                        account_id: str, region_name: str, **kwargs: Any) -> LocalSnsTopicPolicy:
        from moto.sns.models import sns_backends

        props = cloudformation_json["Properties"]
        for topic_arn in props["Topics"]:
            sns_backends[account_id][topic_arn.split(":")[3]].set_topic_attribute(
                topic_arn, "Policy", json.dumps(props["PolicyDocument"]))
        model = cls()
        model.physical_resource_id = resource_name
        return model


class LocalSesConfigurationSet(_LocalModel, CloudFormationModel):
    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SES::ConfigurationSet"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],  # type: ignore[misc]
                                        account_id: str, region_name: str, **kwargs: Any
                                        ) -> LocalSesConfigurationSet:
        from moto.ses.models import ses_backends

        name = cloudformation_json.get("Properties", {}).get("Name") or resource_name
        ses_backends[account_id][region_name].create_configuration_set(name)
        model = cls()
        model.physical_resource_id = name
        return model


class LocalSecret(_LocalModel, CloudFormationModel):
    """AWS::SecretsManager::Secret with GenerateSecretString: a random secret, as Secrets Manager would make."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::Secret"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],  # type: ignore[misc]
                                        account_id: str, region_name: str, **kwargs: Any) -> LocalSecret:
        import secrets

        from moto.secretsmanager.models import secretsmanager_backends

        props = cloudformation_json.get("Properties", {})
        length = int((props.get("GenerateSecretString") or {}).get("PasswordLength", 48))
        value = props.get("SecretString") or secrets.token_urlsafe(length)[:length]
        created = secretsmanager_backends[account_id][region_name].create_secret(
            name=props.get("Name") or resource_name, secret_string=value, secret_binary=None,
            description=props.get("Description"), tags=None, kms_key_id=None, client_request_token=None,
            replica_regions=[], force_overwrite=False)
        model = cls()
        model.physical_resource_id = json.loads(created)["ARN"] if isinstance(created, str) else created["ARN"]
        return model


class LocalCloudWatchAlarm(_LocalModel, CloudFormationModel):
    """AWS::CloudWatch::Alarm (single metric or metric math) through moto's own put_metric_alarm, named
    `<stack>-<logical id>-<suffix>` as CloudFormation would; `Ref` is the name, `Fn::GetAtt Arn` its ARN."""

    arn: str

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.arn

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],  # type: ignore[misc]
                                        account_id: str, region_name: str, **kwargs: Any) -> LocalCloudWatchAlarm:
        from moto.cloudwatch.models import (
            Dimension,
            Metric,
            MetricDataQuery,
            MetricStat,
            cloudwatch_backends,
        )

        props = cloudformation_json.get("Properties", {})
        queries = None
        if props.get("Metrics"):
            queries = []
            for query in props["Metrics"]:
                stat = query.get("MetricStat")
                metric_stat = MetricStat(
                    metric=Metric(metric_name=stat["Metric"]["MetricName"], namespace=stat["Metric"]["Namespace"],
                                  dimensions=[Dimension(d["Name"], d["Value"])
                                              for d in stat["Metric"].get("Dimensions", [])]),
                    period=stat.get("Period"), stat=stat.get("Stat"), unit=stat.get("Unit")) if stat else None
                queries.append(MetricDataQuery(query_id=query["Id"], label=query.get("Label"),
                                               period=query.get("Period"), return_data=query.get("ReturnData"),
                                               expression=query.get("Expression"), metric_stat=metric_stat))
        name = props.get("AlarmName") or resource_name
        alarm = cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=name, namespace=props.get("Namespace"), metric_name=props.get("MetricName"),
            metric_data_queries=queries, comparison_operator=props["ComparisonOperator"],
            evaluation_periods=int(props["EvaluationPeriods"]),
            datapoints_to_alarm=int(props["DatapointsToAlarm"]) if "DatapointsToAlarm" in props else None,
            period=int(props["Period"]) if "Period" in props else None, threshold=float(props["Threshold"]),
            statistic=props.get("Statistic"), description=props.get("AlarmDescription"),
            dimensions=props.get("Dimensions", []),
            alarm_actions=props.get("AlarmActions", []), ok_actions=props.get("OKActions", []),
            treat_missing_data=props.get("TreatMissingData"))
        model = cls()
        model.physical_resource_id = name
        model.arn = alarm.alarm_arn
        return model


class LocalSmsProtectConfiguration(_LocalModel, CloudFormationModel):
    """AWS::SMSVOICE::ProtectConfiguration: its SMS country rules (intrinsics already resolved by moto)."""

    _ATTRIBUTES = {"Arn": "arn", "ProtectConfigurationId": "physical_resource_id"}
    arn: str

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SMSVOICE::ProtectConfiguration"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls._ATTRIBUTES

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return getattr(self, self._ATTRIBUTES[attribute_name])

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],  # type: ignore[misc]
                                        account_id: str, region_name: str, **kwargs: Any
                                        ) -> LocalSmsProtectConfiguration:
        from localcloud.smsvoice import backend

        rules = (cloudformation_json.get("Properties", {}).get("CountryRuleSet") or {}).get("SMS") or []
        created = backend.create_protect_configuration(account_id, region_name, rules)
        model = cls()
        model.physical_resource_id, model.arn = created.protect_configuration_id, created.arn
        return model


class LocalSmsConfigurationSet(_LocalModel, CloudFormationModel):
    """AWS::SMSVOICE::ConfigurationSet: its event destinations and protect configuration."""

    arn: str

    @staticmethod
    def cloudformation_name_type() -> str:
        return "ConfigurationSetName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SMSVOICE::ConfigurationSet"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name != "Arn":
            raise KeyError(attribute_name)
        return self.arn

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],  # type: ignore[misc]
                                        account_id: str, region_name: str, **kwargs: Any
                                        ) -> LocalSmsConfigurationSet:
        from localcloud.smsvoice import backend

        props = cloudformation_json.get("Properties", {})
        created = backend.create_configuration_set(
            account_id, region_name, props.get("ConfigurationSetName") or resource_name,
            props.get("EventDestinations") or [], props.get("ProtectConfigurationId") or "")
        model = cls()
        model.physical_resource_id, model.arn = created.name, created.arn
        return model


LOCAL_MODELS = (LocalSnsSubscription, LocalSnsTopicPolicy, LocalSesConfigurationSet, LocalSecret,
                LocalCloudWatchAlarm, LocalSmsProtectConfiguration, LocalSmsConfigurationSet)
