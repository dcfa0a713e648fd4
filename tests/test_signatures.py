"""The signature normaliser on real strings: DIRAC 9.1.22's JobMinorStatus / JobStatus vocabulary
(WorkloadManagementSystem/Client/JobMinorStatus.py, JobWrapper), the seed report's ApplicationStatus
values, and messages with the varying parts a grid job carries (codes, paths, hosts, ids)."""

import pytest

from failover.signatures import normalise, signature

# DIRAC's fixed vocabulary stays as it is: nothing in it varies.
DIRAC_VOCABULARY = [
    "Application",
    "Application not found",
    "Application thread failed",
    "Application thread did not complete",
    "Application Finished Successfully",
    "Application Finished With Errors",
    "Downloading InputSandbox",
    "Downloading InputSandbox LFN(s)",
    "Failed Downloading InputSandbox",
    "Failed Downloading InputSandbox LFN(s)",
    "Failed sending requests",
    "Execution Complete",
    "Exception During Execution",
    "Going to reschedule job",
    "Job Rescheduled",
    "Input Data Resolution",
    "Pilot Agent Submission",
    "Pending Requests",
    "Requests done",
    "Job has reached the CPU limit of the queue",
    "Job has exceeded maximum wall clock time",
    "Job Initialization",
    "Job has insufficient disk space to continue",
    "Job Wrapper Initialization",
    "JobWrapper execution",
    "Marked for termination",
    "Received Kill signal",
    "Resolving Output Sandbox",
    "Job stalled: pilot not running",
    "Uploading Output Sandbox",
    "Output Sandbox Uploaded",
    "Uploading Output Data",
    "Uploading Outputs",
    "Output Data Uploaded",
    "Watchdog identified this job as stalled",
    "Illegal Job JDL",
    "Input Data Not Available",
    "No candidate sites available",
    "Maximum of reschedulings reached",
    # The seed report's ApplicationStatus values (the CTAO mail of transformation 4848).
    "Workflow successful, end of FailoverRequest module execution.",
    "Failed Input Data Resolution",
    "Executing Step1_ctapipe_process",
]


@pytest.mark.parametrize("text", DIRAC_VOCABULARY)
def test_dirac_vocabulary_is_left_as_it_is(text):
    assert normalise(text) == text


VARYING = [
    # The seed's failure, and the same failure with another exit code.
    ("Operation not permitted ( 1 : cta-prod-setup-software Exited With Status 1)",
     "Operation not permitted ( N : cta-prod-setup-software Exited With Status N)"),
    ("Operation not permitted ( 137 : cta-prod-setup-software Exited With Status 137)",
     "Operation not permitted ( N : cta-prod-setup-software Exited With Status N)"),
    # JobWrapper's application status after a failed minor status ("Failed <minor> ").
    ("Failed Application Finished With Errors ", "Failed Application Finished With Errors"),
    ("Failed Input Data Resolution ", "Failed Input Data Resolution"),
    ("Exited With Status 2", "Exited With Status N"),
    ("ctapipe-process Exited With Status 139", "ctapipe-process Exited With Status N"),
    ("CPU time 1234.5 s", "CPU time N s"),
    ("Job 123456 killed by user jdoe", "Job <job> killed by user <user>"),
    ("JobID=98765 rescheduled", "JobID=<job> rescheduled"),
    ("run 42 failed", "run <run> failed"),
    ("Could not process run000123", "Could not process run<run>"),
    ("Failed to upload /ctao/MC/PROD5b/LaPalma/gamma-diffuse/00004848/run000123.DL2.h5",
     "Failed to upload <path>"),
    ("Could not open root://eos.cta-observatory.org//eos/cta/prod/file_01.h5", "Could not open <path>"),
    ("Upload to srm://ccsrm.in2p3.fr:8443/srm/managerv2?SFN=/pnfs/x failed", "Upload to <path> failed"),
    ("Connection to dirac-prod.cta-observatory.org timed out after 30.5 s", "Connection to <host> timed out after N s"),
    ("No route to host 192.168.10.42:9130", "No route to host <host>"),
    ("Cannot read run000123.dl2.h5", "Cannot read run<run>.dl2.h5"),
    ("SE ccsrm.in2p3.fr:8443 is down", "SE <host> is down"),
    ("Bad file 3fa85f64-5717-4562-b3fc-2c963f66afa6", "Bad file <hex>"),
    ("Checksum mismatch adler32 1a2b3c4d != 9f8e7d6c", "Checksum mismatch adler32 <hex> != <hex>"),
    ("Exit code 0x1f", "Exit code <hex>"),
    ("Proxy of /DC=org/DC=terena/DC=tcs/CN=John Doe jdoe@example.org expired",
     "Proxy of <user> jdoe@example.org expired"),
    ("Permission denied: /home/cta012/work", "Permission denied: ~<user>/work"),
    ("owner: tmpuser42 not allowed", "owner: <user> not allowed"),
    ("Stalled since 2024-03-01 12:00:05", "Stalled since <time>"),
    ("Heartbeat missing at 12:00:05", "Heartbeat missing at <time>"),
    ("Memory used 4.2e3 MB of 2000 MB", "Memory used N MB of N MB"),
    ("  Too   many   spaces 3  ", "Too many spaces N"),
]


@pytest.mark.parametrize(("text", "expected"), VARYING)
def test_varying_parts_become_placeholders(text, expected):
    assert normalise(text) == expected


def test_site_names_and_software_names_keep_their_letters_and_digits():
    assert normalise("Banned at LCG.IN2P3-CC.fr and LCG.CNAF.it") == "Banned at LCG.IN2P3-CC.fr and LCG.CNAF.it"
    assert normalise("Executing Step2_ctapipe_merge DL2 x86_64") == "Executing Step2_ctapipe_merge DL2 x86_64"


def test_two_jobs_failing_the_same_way_share_one_signature():
    a = signature("Application Finished With Errors",
                  "Operation not permitted ( 1 : cta-prod-setup-software Exited With Status 1)")
    b = signature("Application Finished With Errors",
                  "Operation not permitted ( 2 : cta-prod-setup-software Exited With Status 2)")
    assert a == b == ("Application Finished With Errors | "
                      "Operation not permitted ( N : cta-prod-setup-software Exited With Status N)")


def test_a_missing_part_reads_as_a_dash():
    assert signature("Job stalled: pilot not running", "Unknown") == "Job stalled: pilot not running | -"
    assert signature("", None) == "- | -"
    assert normalise(None) == ""
