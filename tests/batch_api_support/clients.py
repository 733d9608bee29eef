"""Two real clients of `batchfan batch-api` behind one adapter, `call(operation,
params)`, so that the scenarios in scenarios.py run identically through both:

- boto3: the Python SDK, `endpoint_url` set;
- the AWS CLI (`awscli` from PyPI, path in $BATCHFAN_AWS_CLI): one subprocess
  per call, `aws batch OP --cli-input-json JSON --endpoint-url URL --output json
  --no-paginate`, with throwaway credentials and no config file of the machine.

A call returns the response as a dict, or raises ApiError with AWS's error
code, the message, and the HTTP status (None through the CLI, which does not
print it)."""
import json
import os
import re
import subprocess
import time

import botocore
from botocore import xform_name

REGION = "eu-west-1"
# How long a job may take to finish on a loaded 2-core machine.
DEADLINE_SECS = 120


class ApiError(Exception):
    def __init__(self, code, message, status):
        super().__init__(f"{code} ({status}): {message}")
        self.code, self.message, self.status = code, message, status


def boto3_call(endpoint):
    import boto3

    client = boto3.client("batch", endpoint_url=endpoint, region_name=REGION,
                          aws_access_key_id="x", aws_secret_access_key="y")

    def call(operation, params):
        try:
            out = getattr(client, xform_name(operation))(**params)
        except botocore.exceptions.ClientError as e:
            err = e.response["Error"]
            raise ApiError(err["Code"], err["Message"], e.response["ResponseMetadata"]["HTTPStatusCode"])
        out.pop("ResponseMetadata", None)
        return out

    return call


CLI_ERROR = re.compile(r"An error occurred \((\w+)\) when calling the (\w+) operation[^:]*: (.*)", re.S)


def cli_call(endpoint):
    aws = os.environ.get("BATCHFAN_AWS_CLI", "")
    assert aws and os.access(aws, os.X_OK), (
        f"BATCHFAN_AWS_CLI={aws!r} is not an executable: run `source scripts/setup/20-moto.sh` "
        "(it installs the pinned awscli into .venv)")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
           "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_DEFAULT_REGION": REGION,
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}

    def call(operation, params):
        args = [aws, "batch", xform_name(operation, "-"), "--cli-input-json", json.dumps(params),
                "--endpoint-url", endpoint, "--output", "json", "--no-paginate"]
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=DEADLINE_SECS)
        if done.returncode == 0:
            return json.loads(done.stdout) if done.stdout.strip() else {}
        found = CLI_ERROR.search(done.stderr)
        assert found, f"aws {operation} failed without an AWS error (rc {done.returncode}): {done.stderr}"
        assert found.group(2) == operation, done.stderr
        raise ApiError(found.group(1), found.group(3).strip(), None)

    return call


class Api:
    """The adapter plus the few helpers every scenario uses."""

    def __init__(self, call, out):
        self.call, self.out = call, out

    def __call__(self, operation, **params):
        return self.call(operation, params)

    def error(self, operation, **params):
        """The ApiError a call that must fail raises."""
        try:
            out = self.call(operation, params)
        except ApiError as e:
            return e
        raise AssertionError(f"{operation} {params} was accepted: {out}")

    def describe(self, job_id):
        jobs = self("DescribeJobs", jobs=[job_id])["jobs"]
        assert len(jobs) == 1, (job_id, jobs)
        return jobs[0]

    def wait(self, job_id, statuses=("SUCCEEDED", "FAILED")):
        deadline = time.monotonic() + DEADLINE_SECS
        while True:
            job = self.describe(job_id)
            if job["status"] in statuses:
                return job
            assert time.monotonic() < deadline, f"{job_id} still {job['status']}"
            time.sleep(0.05)

    def define(self, name, script, vcpus="1"):
        """Definition `name` running `sh -c SCRIPT`, with default parameter dir = the out dir."""
        return self("RegisterJobDefinition", jobDefinitionName=name, type="container",
                    parameters={"dir": self.out},
                    containerProperties={"image": "busybox", "command": ["sh", "-c", script],
                                         "resourceRequirements": [{"type": "VCPU", "value": vcpus},
                                                                  {"type": "MEMORY", "value": "64"}]}
                    )["jobDefinitionArn"]

    def submit(self, name, definition, queue="q", **more):
        return self("SubmitJob", jobName=name, jobQueue=queue, jobDefinition=definition, **more)["jobId"]

    def read(self, name):
        with open(os.path.join(self.out, name)) as f:
            return f.read()
