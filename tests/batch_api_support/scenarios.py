"""The batch-api conformance scenarios, run through boto3 or the AWS CLI (see
clients.py) against a `batchfan batch-api` started with `--time-scale 0.01`.
tests/batch_api.rs runs the same list through aws-sdk-batch, one test per
name (a test there checks both lists hold the same names).

Usage: python scenarios.py --list
       python scenarios.py boto3|cli ENDPOINT OUT_DIR [NAME ...]
Exits non-zero (an AssertionError with the detail) when anything differs."""
import os
import sys
import time

from clients import Api, boto3_call, cli_call

QUEUE = "q"


def array_children_run_with_their_index_and_size(api):
    api.define("idx", "echo Ref::word $AWS_BATCH_JOB_ARRAY_INDEX $AWS_BATCH_JOB_ARRAY_SIZE > Ref::dir/i-$AWS_BATCH_JOB_ARRAY_INDEX")
    arr = api.submit("arr", "idx", arrayProperties={"size": 3}, parameters={"word": "hello"})
    parent = api.wait(arr)
    assert parent["status"] == "SUCCEEDED", parent
    assert parent["arrayProperties"]["size"] == 3
    assert parent["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 3, parent["arrayProperties"]
    for i in range(3):
        assert api.read(f"i-{i}") == f"hello {i} 3\n"
    child = api.describe(f"{arr}:2")
    assert child["arrayProperties"]["index"] == 2 and child["status"] == "SUCCEEDED", child
    attempt = child["attempts"][0]["container"]
    assert attempt["exitCode"] == 0 and attempt["logStreamName"], attempt
    assert child["createdAt"] <= child["startedAt"] <= child["stoppedAt"], child


def n_to_n_failure_fails_only_the_matching_dependent(api):
    api.define("first", "[ $AWS_BATCH_JOB_ARRAY_INDEX != 1 ] || exit 3")
    api.define("second", "touch Ref::dir/n-$AWS_BATCH_JOB_ARRAY_INDEX")
    a = api.submit("a", "first", arrayProperties={"size": 3})
    b = api.submit("b", "second", arrayProperties={"size": 3}, dependsOn=[{"jobId": a, "type": "N_TO_N"}])
    for job in (api.wait(a), api.wait(b)):
        assert job["status"] == "FAILED", job
        summary = {k: v for k, v in job["arrayProperties"]["statusSummary"].items() if v}
        assert summary == {"FAILED": 1, "SUCCEEDED": 2}, summary
    b1 = api.describe(f"{b}:1")
    assert b1["status"] == "FAILED" and b1["attempts"] == [], b1
    assert "Dependent" in b1.get("statusReason", ""), b1
    assert not os.path.exists(os.path.join(api.out, "n-1"))
    assert api.describe(f"{a}:1")["attempts"][0]["container"]["exitCode"] == 3
    assert api.describe(f"{b}:0")["status"] == "SUCCEEDED"


def sequential_children_run_in_index_order(api):
    api.define("append", "echo $AWS_BATCH_JOB_ARRAY_INDEX >> Ref::dir/order")
    job = api.submit("seq", "append", arrayProperties={"size": 4}, dependsOn=[{"type": "SEQUENTIAL"}])
    assert api.wait(job)["status"] == "SUCCEEDED"
    assert api.read("order") == "0\n1\n2\n3\n"


def exit_75_is_retried_then_succeeds_with_two_attempts(api):
    api.define("flaky", "if [ -e Ref::dir/once ]; then exit 0; fi; touch Ref::dir/once; exit 75")
    rules = [{"onExitCode": "75", "action": "RETRY"}, {"onExitCode": "*", "action": "EXIT"}]
    job = api.submit("flaky", "flaky", retryStrategy={"attempts": 2, "evaluateOnExit": rules})
    done = api.wait(job)
    assert done["status"] == "SUCCEEDED", done
    assert [a["container"]["exitCode"] for a in done["attempts"]] == [75, 0], done["attempts"]
    assert done["retryStrategy"]["attempts"] == 2


def an_attempt_over_its_timeout_is_killed_and_fails(api):
    api.define("long", "exec sleep 600")
    done = api.wait(api.submit("slow", "long", timeout={"attemptDurationSeconds": 60}))
    assert done["status"] == "FAILED" and done["timeout"]["attemptDurationSeconds"] == 60, done
    assert "timeout" in done["attempts"][0]["statusReason"], done["attempts"]


def terminate_stops_a_running_child_and_cancel_a_pending_job(api):
    api.define("forever", "exec sleep 600")
    arr = api.submit("forever", "forever", arrayProperties={"size": 2})
    pending = api.submit("after", "forever", dependsOn=[{"jobId": arr}])
    child = f"{arr}:0"
    api.wait(child, ("RUNNING",))
    assert api.describe(pending)["status"] == "PENDING"
    # CancelJob leaves a RUNNING job alone (AWS's rule) and fails a PENDING one.
    api("CancelJob", jobId=child, reason="not started?")
    assert api.describe(child)["status"] == "RUNNING"
    api("CancelJob", jobId=pending, reason="no longer needed")
    cancelled = api.describe(pending)
    assert cancelled["status"] == "FAILED" and cancelled["statusReason"] == "no longer needed", cancelled
    assert cancelled["attempts"] == []
    api("TerminateJob", jobId=child, reason="stop it")
    stopped = api.wait(child)
    assert stopped["status"] == "FAILED" and stopped["statusReason"] == "stop it", stopped
    assert api.describe(f"{arr}:1")["status"] != "FAILED", "terminating one child leaves its sibling"
    api("TerminateJob", jobId=arr, reason="cleanup")
    assert api.wait(arr)["status"] == "FAILED"
    e = api.error("TerminateJob", jobId="nope", reason="x")
    assert e.code == "ClientException" and 'jobId "nope"' in e.message, e


def parameters_of_the_request_override_the_definition_defaults(api):
    api("RegisterJobDefinition", jobDefinitionName="word", type="container",
        parameters={"dir": api.out, "word": "fromdefinition"},
        containerProperties={"image": "busybox", "command": ["sh", "-c", "echo Ref::word > Ref::dir/w-Ref::word"],
                             "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                                      {"type": "MEMORY", "value": "64"}]})
    d = api.wait(api.submit("d", "word"))
    o = api.wait(api.submit("o", "word:1", parameters={"word": "fromrequest"}))
    assert (d["status"], o["status"]) == ("SUCCEEDED", "SUCCEEDED"), (d, o)
    assert api.read("w-fromdefinition") == "fromdefinition\n"
    assert api.read("w-fromrequest") == "fromrequest\n"
    assert o["parameters"]["word"] == "fromrequest" and d["jobDefinition"].endswith(":job-definition/word:1")
    assert o["container"]["command"][2].startswith("echo fromrequest >"), o["container"]


def list_jobs_pages_over_250_jobs_without_loss_or_duplicates(api):
    api.define("wait", "exec sleep 600")
    blocker = api.submit("blocker", "wait")
    arr = api.submit("many", "wait", arrayProperties={"size": 250}, dependsOn=[{"jobId": blocker}])
    seen, token, pages = [], None, 0
    while True:
        params = {"arrayJobId": arr, "jobStatus": "PENDING", "maxResults": 100}
        page = api("ListJobs", **params, **({"nextToken": token} if token else {}))
        pages += 1
        seen += [j["jobId"] for j in page["jobSummaryList"]]
        token = page.get("nextToken")
        if not token:
            break
    assert pages == 3 and len(seen) == 250, (pages, len(seen))
    assert set(seen) == {f"{arr}:{i}" for i in range(250)}
    # By queue: the pending parent, found by a JOB_NAME prefix filter (every status, newest first).
    named = api("ListJobs", jobQueue=QUEUE, filters=[{"name": "JOB_NAME", "values": ["MAN*"]}])
    assert [j["jobId"] for j in named["jobSummaryList"]] == [arr], named
    api("TerminateJob", jobId=blocker, reason="done")
    assert api.wait(arr)["status"] == "FAILED"


def each_invalid_submission_is_a_client_exception_naming_the_field(api):
    api.define("noop", "true")
    rule = {"onExitCode": "1", "action": "RETRY"}
    cases = [
        ("arrayProperties.size 1", {"arrayProperties": {"size": 1}}),
        ("arrayProperties.size 10001", {"arrayProperties": {"size": 10001}}),
        ("dependsOn has 21", {"dependsOn": [{"jobId": f"j{i}"} for i in range(21)]}),
        ('dependsOn[0].type "ALL"', {"dependsOn": [{"jobId": "j0", "type": "ALL"}]}),
        ('jobName "bad name"', {"jobName": "bad name"}),
        ('jobName "', {"jobName": "x" * 129}),
        ("retryStrategy.attempts 11", {"retryStrategy": {"attempts": 11}}),
        ("retryStrategy.attempts 0", {"retryStrategy": {"attempts": 0}}),
        ("retryStrategy.evaluateOnExit has 6", {"retryStrategy": {"attempts": 2, "evaluateOnExit": [rule] * 6}}),
        ('onExitCode "7x"', {"retryStrategy": {"attempts": 2, "evaluateOnExit": [dict(rule, onExitCode="7x")]}}),
        ("timeout.attemptDurationSeconds 59", {"timeout": {"attemptDurationSeconds": 59}}),
        ("request is", {"parameters": {"big": "x" * 31 * 1024}}),
        ('jobQueue "nope"', {"jobQueue": "nope"}),
        ('jobDefinition "missing"', {"jobDefinition": "missing"}),
        ('dependency job id "j0"', {"dependsOn": [{"jobId": "j0"}]}),
        ("schedulingPriorityOverride 10000", {"schedulingPriorityOverride": 10000}),
        ("tags has 51", {"tags": {f"k{i}": "v" for i in range(51)}}),
        ("nodeOverrides", {"nodeOverrides": {"numNodes": 2}}),
        ("eksPropertiesOverride", {"eksPropertiesOverride": {"podProperties": {}}}),
    ]
    for field, change in cases:
        e = api.error("SubmitJob", **{"jobName": "ok", "jobQueue": QUEUE, "jobDefinition": "noop", **change})
        assert e.code == "ClientException" and e.status in (400, None), (field, e)
        assert field in e.message, (field, e.message)
    others = [
        ("jobs has 101", "DescribeJobs", {"jobs": [f"j{i}" for i in range(101)]}),
        ("jobQueue and arrayJobId", "ListJobs", {"jobQueue": QUEUE, "arrayJobId": "a"}),
        ("filters has 2", "ListJobs", {"jobQueue": QUEUE, "filters": [{"name": "JOB_NAME", "values": ["a"]}] * 2}),
        ("maxResults 0", "ListJobs", {"jobQueue": QUEUE, "maxResults": 0}),
        ("multiNodeJobId", "ListJobs", {"multiNodeJobId": "m"}),
        ('jobId "nope"', "CancelJob", {"jobId": "nope", "reason": "r"}),
    ]
    for field, operation, params in others:
        e = api.error(operation, **params)
        assert e.code == "ClientException" and e.status in (400, None), (field, e)
        assert field in e.message, (field, e.message)


def wait_valid(api, name):
    # A new compute environment is CREATING until it is VALID, as on AWS; a
    # queue can only be made on VALID ones.
    deadline = time.time() + 60
    while api("DescribeComputeEnvironments", computeEnvironments=[name])["computeEnvironments"][0]["status"] != "VALID":
        assert time.time() < deadline, f"{name} is not VALID after 60 s"
        time.sleep(0.05)


def jobs_of_a_queue_use_only_its_compute_environments(api):
    def ce(name):
        api("CreateComputeEnvironment", computeEnvironmentName=name, type="MANAGED",
            computeResources={"type": "EC2", "maxvCpus": 1, "subnets": ["subnet-1"],
                              "instanceRole": "ecsInstanceRole", "instanceTypes": ["optimal"]})

    def queue(name, env):
        api("CreateJobQueue", jobQueueName=name, priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env}])

    for name in ("ce-a", "ce-b", "ce-shared"):
        ce(name)
    for name in ("ce-a", "ce-b", "ce-shared"):
        wait_valid(api, name)
    for name, env in (("qa", "ce-a"), ("qb", "ce-b"), ("qs1", "ce-shared"), ("qs2", "ce-shared")):
        queue(name, env)
    api.define("gate", "echo $AWS_BATCH_JQ_NAME $AWS_BATCH_CE_NAME > Ref::dir/env-$AWS_BATCH_JOB_ID; "
                       "until [ -e Ref::dir/go-$AWS_BATCH_JOB_ID ]; do sleep 0.1; done")
    api.define("quick", "true")
    go = lambda job: open(os.path.join(api.out, f"go-{job}"), "w").close()  # noqa: E731
    status = lambda job: api.describe(job)["status"]  # noqa: E731

    # Separate environments of 1 vCPU: one job of qa runs, and qb's job runs beside it.
    a1, a2 = api.submit("a1", "gate", "qa"), api.submit("a2", "gate", "qa")
    b1 = api.submit("b1", "gate", "qb")
    api.wait(b1, ("RUNNING",))
    api.wait(a1, ("RUNNING",))
    assert status(a2) == "RUNNABLE", "qa's environment has 1 vCPU, held by a1"
    # One environment shared by two queues: one job of the two runs.
    s1, s2 = api.submit("s1", "gate", "qs1"), api.submit("s2", "gate", "qs2")
    api.wait(s1, ("RUNNING",))
    go(b1)
    api.wait(b1)
    assert api.wait(api.submit("probe", "quick", "qb"))["status"] == "SUCCEEDED"
    assert status(s2) == "RUNNABLE", "qs1 and qs2 share 1 vCPU, held by s1"
    # A DISABLED environment places nothing; enabled again, its job starts.
    api("UpdateComputeEnvironment", computeEnvironment="ce-b", state="DISABLED")
    b2 = api.submit("b2", "quick", "qb")
    go(a1)
    api.wait(a2, ("RUNNING",))
    assert status(b2) == "RUNNABLE", "ce-b is DISABLED"
    api("UpdateComputeEnvironment", computeEnvironment="ce-b", state="ENABLED")
    assert api.wait(b2)["status"] == "SUCCEEDED"
    for job in (a2, s1, s2):
        go(job)
    for job in (a1, a2, s1, s2):
        assert api.wait(job)["status"] == "SUCCEEDED", job
    # The job sees its queue and the compute environment it was placed on.
    assert (api.read(f"env-{a1}"), api.read(f"env-{s2}")) == ("qa ce-a\n", "qs2 ce-shared\n")


SCENARIOS = [
    array_children_run_with_their_index_and_size,
    n_to_n_failure_fails_only_the_matching_dependent,
    sequential_children_run_in_index_order,
    exit_75_is_retried_then_succeeds_with_two_attempts,
    an_attempt_over_its_timeout_is_killed_and_fails,
    terminate_stops_a_running_child_and_cancel_a_pending_job,
    parameters_of_the_request_override_the_definition_defaults,
    list_jobs_pages_over_250_jobs_without_loss_or_duplicates,
    each_invalid_submission_is_a_client_exception_naming_the_field,
    jobs_of_a_queue_use_only_its_compute_environments,
]


def main(argv):
    if argv[1:] == ["--list"]:
        print("\n".join(s.__name__ for s in SCENARIOS))
        return
    client, endpoint, out, *only = argv[1:]
    call = {"boto3": boto3_call, "cli": cli_call}[client](endpoint)
    api = Api(call, out, boto3_call(endpoint) if client == "cli" else None)
    api("CreateComputeEnvironment", computeEnvironmentName="ce", type="UNMANAGED")
    wait_valid(api, "ce")
    api("CreateJobQueue", jobQueueName=QUEUE, priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "ce"}])
    for scenario in SCENARIOS:
        if not only or scenario.__name__ in only:
            scenario(api)
            print(f"{client}: {scenario.__name__} passed", flush=True)
    print(f"{client} scenarios passed")


if __name__ == "__main__":
    main(sys.argv)
