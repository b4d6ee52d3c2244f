"""`make costs` counts every AWS call the system makes, whichever way moto answers it (its botocore stubber, or the
local cloud's fast lane, where a query-protocol request's body is still a dict)."""

from __future__ import annotations

from collections import Counter

from localcloud import costs


def test_the_counter_counts_calls_the_fast_lane_answers_and_calls_moto_answers(cloud):
    sns, sqs = cloud.client("sns"), cloud.client("sqs")
    topic = sns.create_topic(Name="counted")["TopicArn"]
    url = sqs.create_queue(QueueName="counted")["QueueUrl"]
    table = cloud.table("DeliveriesTableName")
    counts: Counter = Counter()
    originals = costs._install_counter(counts)
    try:
        published = sns.publish(TopicArn=topic, Message='{"kind": "receipt"}')  # the lane, a form body
        sns.publish(PhoneNumber="+12065550100", Message="a code")  # the lane too: an SMS through SNS
        sqs.send_message(QueueUrl=url, MessageBody="x")  # the lane, a JSON body
        table.put_item(Item={"message_id": "counted", "status": "SENT"})  # the lane, DynamoDB
        sns.list_topics()  # moto's stubber
    finally:
        costs._uninstall_counter(originals)
        sns.delete_topic(TopicArn=topic)
        sqs.delete_queue(QueueUrl=url)
        table.delete_item(Key={"message_id": "counted"})
    assert published["MessageId"]
    assert counts["sns:Publish"] == 1 and counts["sns:Publish(SMS)"] == 1
    assert counts["sqs:SendMessage"] == 1 and counts["sns:ListTopics"] == 1
    assert counts[f"dynamodb:PutItem@{table.name}"] == 1
    assert sum(counts.values()) == 5
