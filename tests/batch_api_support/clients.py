"""Two real clients of `batchfan batch-api` behind one adapter, `call(operation,
params)`, so that the scenarios in scenarios.py run identically through both:

- boto3: the Python SDK, `endpoint_url` set;
- the AWS CLI (`awscli` from PyPI, path in $BATCHFAN_AWS_CLI): `aws batch OP
  --cli-input-json JSON --endpoint-url URL --output json --no-paginate`, with
  throwaway credentials and no config file of the machine. The `aws` script
  only calls `awscli.clidriver.main()`; each call here runs a new driver of
  that same package in this process (argument parsing, `--cli-input-json`,
  the request, the output formatting and the error text all the CLI's own),
  because a process per call costs ~0.35 s of CPU in Python's start-up and
  imports, which made this the slowest test of the suite after Terraform's.

A call returns the response as a dict, or raises ApiError with AWS's error
code, the message, and the HTTP status (None through the CLI, which does not
print it)."""
import contextlib
import io
import json
import os
import re
import sys
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
    with open(aws, "rb") as f:
        head = f.read(1024).decode(errors="replace").splitlines()
    shebang = head[0][2:].strip()
    if shebang == "/bin/sh" and len(head) > 1 and "exec'" in head[1]:
        shebang = head[1].split('"')[1]  # pip's form for long paths: 'exec' "PYTHON" "$0" "$@"
    assert os.path.realpath(shebang) == os.path.realpath(sys.executable), (
        f"{aws} runs {shebang!r}, not this python ({sys.executable}): its awscli is not the one "
        "this process imports; point BATCHFAN_AWS_CLI at the venv's aws")
    # The machine's AWS settings stay out: only these, as for a fresh `aws`.
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_DEFAULT_REGION": REGION,
                       "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    from awscli.clidriver import create_clidriver

    def call(operation, params):
        args = ["batch", xform_name(operation, "-"), "--cli-input-json", json.dumps(params),
                "--endpoint-url", endpoint, "--output", "json", "--no-paginate"]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = create_clidriver().main(args)
        stdout, stderr = out.getvalue(), err.getvalue()
        if code == 0:
            return json.loads(stdout) if stdout.strip() else {}
        found = CLI_ERROR.search(stderr)
        assert found, f"aws {operation} failed without an AWS error (rc {code}): {stderr}"
        assert found.group(2) == operation, stderr
        raise ApiError(found.group(1), found.group(3).strip(), None)

    return call


class Api:
    """The adapter plus the few helpers every scenario uses."""

    def __init__(self, call, out, poll=None):
        """`poll`: the client `wait` polls with between its first and last
        look (default `call`). Through the CLI every call is a new Python
        process (~0.4 s of CPU), so the CLI scenarios poll in-process with
        boto3 and still read each job they wait for through the CLI."""
        self.call, self.out, self.poll = call, out, poll or call

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
        """The job once its status is one of `statuses`, read through `call`
        (unless it has moved on since the poll saw it there)."""
        deadline = time.monotonic() + DEADLINE_SECS
        job = self.describe(job_id)
        while job["status"] not in statuses:
            assert time.monotonic() < deadline, f"{job_id} still {job['status']}"
            time.sleep(0.05)
            jobs = self.poll("DescribeJobs", {"jobs": [job_id]})["jobs"]
            assert len(jobs) == 1, (job_id, jobs)
            job = jobs[0]
            if job["status"] in statuses and self.poll is not self.call:
                seen = self.describe(job_id)
                job = seen if seen["status"] in statuses else job
        return job

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
