"""boto3 against `batchfan batch-api`: the scenarios of tests/batch_api.rs through
the Python SDK. Usage: python boto3_scenarios.py ENDPOINT OUT_DIR. Exits non-zero
(an AssertionError with the detail) when anything differs."""
import os
import sys
import time

import boto3
import botocore

endpoint, out = sys.argv[1], sys.argv[2]
b = boto3.client("batch", endpoint_url=endpoint, region_name="eu-west-1",
                 aws_access_key_id="x", aws_secret_access_key="y")


def wait(job_id):
    deadline = time.monotonic() + 120
    while True:
        job = b.describe_jobs(jobs=[job_id])["jobs"][0]
        if job["status"] in ("SUCCEEDED", "FAILED"):
            return job
        assert time.monotonic() < deadline, f"{job_id} still {job['status']}"
        time.sleep(0.05)


def define(name, script):
    b.register_job_definition(
        jobDefinitionName=name, type="container", parameters={"dir": out},
        containerProperties={"image": "busybox", "command": ["sh", "-c", script],
                             "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                      {"type": "MEMORY", "value": "64"}]})


def wait_valid(describe, key, name):
    # A new compute environment or queue is CREATING until it is VALID, as on AWS.
    deadline = time.time() + 60
    while describe()[key][0]["status"] != "VALID":
        assert time.time() < deadline, f"{name} is not VALID after 60 s"
        time.sleep(0.05)


b.create_compute_environment(computeEnvironmentName="ce", type="UNMANAGED")
wait_valid(lambda: b.describe_compute_environments(computeEnvironments=["ce"]), "computeEnvironments", "ce")
b.create_job_queue(jobQueueName="q", priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "ce"}])

# Array children see their index and the size; parameters override the definition's.
define("idx", "echo Ref::word $AWS_BATCH_JOB_ARRAY_INDEX $AWS_BATCH_JOB_ARRAY_SIZE > Ref::dir/py-$AWS_BATCH_JOB_ARRAY_INDEX")
arr = b.submit_job(jobName="arr", jobQueue="q", jobDefinition="idx", arrayProperties={"size": 3},
                   parameters={"word": "hello"})
parent = wait(arr["jobId"])
assert parent["status"] == "SUCCEEDED", parent
assert parent["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 3, parent["arrayProperties"]
for i in range(3):
    assert open(os.path.join(out, f"py-{i}")).read() == f"hello {i} 3\n"

# N_TO_N: child 1 of the first array fails, so child 1 of the second fails without running.
define("first", "[ $AWS_BATCH_JOB_ARRAY_INDEX != 1 ] || exit 3")
define("second", "true")
a = b.submit_job(jobName="a", jobQueue="q", jobDefinition="first", arrayProperties={"size": 2})["jobId"]
c = b.submit_job(jobName="c", jobQueue="q", jobDefinition="second", arrayProperties={"size": 2},
                 dependsOn=[{"jobId": a, "type": "N_TO_N"}])["jobId"]
assert wait(c)["status"] == "FAILED"
c1 = b.describe_jobs(jobs=[f"{c}:1"])["jobs"][0]
assert c1["status"] == "FAILED" and c1["attempts"] == [], c1
assert b.describe_jobs(jobs=[f"{c}:0"])["jobs"][0]["status"] == "SUCCEEDED"

# Exit 75 retried once, then success.
define("flaky", "[ -e Ref::dir/once ] && exit 0; touch Ref::dir/once; exit 75")
f = b.submit_job(jobName="f", jobQueue="q", jobDefinition="flaky",
                 retryStrategy={"attempts": 2, "evaluateOnExit": [{"onExitCode": "75", "action": "RETRY"}]})
done = wait(f["jobId"])
assert [x["container"]["exitCode"] for x in done["attempts"]] == [75, 0], done["attempts"]

# ListJobs pages with the paginator, every job once.
ids = {b.submit_job(jobName=f"p{i}", jobQueue="q", jobDefinition="second")["jobId"] for i in range(25)}
for i in ids:
    wait(i)
pages = b.get_paginator("list_jobs").paginate(jobQueue="q", jobStatus="SUCCEEDED", PaginationConfig={"PageSize": 10})
listed = [j["jobId"] for page in pages for j in page["jobSummaryList"]]
assert len(listed) == len(set(listed)) and ids <= set(listed), (len(listed), len(ids))

# A bad request: ClientException, HTTP 400, the field named.
try:
    b.submit_job(jobName="x", jobQueue="q", jobDefinition="second", arrayProperties={"size": 1})
    raise AssertionError("array size 1 was accepted")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "ClientException", e.response
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "arrayProperties.size" in e.response["Error"]["Message"], e.response

# Tags on a queue.
arn = b.describe_job_queues(jobQueues=["q"])["jobQueues"][0]["jobQueueArn"]
b.tag_resource(resourceArn=arn, tags={"x": "1", "y": "2"})
b.untag_resource(resourceArn=arn, tagKeys=["x"])
assert b.list_tags_for_resource(resourceArn=arn)["tags"] == {"y": "2"}
print("boto3 scenarios passed")
