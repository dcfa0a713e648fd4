"""The small DIRAC state the contract suite starts from (scenario format)."""

CONTRACT_SCENARIO = {
    "productions": [{"id": 7, "name": "Prod5b_contract", "status": "Active"}],
    "transformations": [
        {"id": 4847, "name": "00000007_Step1_merge50", "type": "Merging", "status": "Active",
         "group_size": 2, "production": 7, "parent": -1},
        {"id": 4848, "name": "00000007_Step2_merge10000", "type": "Merging", "status": "Active",
         "group_size": 10000, "production": 7, "parent": 4847},
        {"id": 4849, "name": "standalone_reprocessing", "type": "DataReprocessing", "status": "Stopped",
         "group_size": 1, "production": None, "parent": None},
    ],
    "files": [
        {"transformation": 4847, "lfn": "/ctao/c/a1.h5", "status": "Assigned", "task": 1},
        {"transformation": 4847, "lfn": "/ctao/c/a2.h5", "status": "Assigned", "task": 1},
        {"transformation": 4847, "lfn": "/ctao/c/b1.h5", "status": "Processed", "task": 2},
        {"transformation": 4847, "lfn": "/ctao/c/b2.h5", "status": "Processed", "task": 2},
        {"transformation": 4847, "lfn": "/ctao/c/c1.h5", "status": "Assigned", "task": 3, "error_count": 10},
        {"transformation": 4847, "lfn": "/ctao/c/c2.h5", "status": "MaxReset", "task": 3, "error_count": 11},
        {"transformation": 4847, "lfn": "/ctao/c/u1.h5", "status": "Unused", "task": None},
        {"transformation": 4848, "lfn": "/ctao/c/m1.h5", "status": "Unused", "task": None},
    ],
    "tasks": [
        {"transformation": 4847, "task": 1, "job": 1001, "status": "Submitted"},
        {"transformation": 4847, "task": 2, "job": 1002, "status": "Done"},
        {"transformation": 4847, "task": 3, "job": 1003, "status": "Running"},
        {"transformation": 4847, "task": 4, "job": 0, "status": "Created"},
    ],
    "jobs": [
        {"id": 1001, "status": "Failed", "minor_status": "Maximum of reschedulings reached",
         "application_status": "Failed Input Data Resolution", "site": "LCG.GRIF.fr"},
        {"id": 1002, "status": "Done", "minor_status": "Execution Complete",
         "application_status": "Workflow successful, end of FailoverRequest module execution.",
         "site": "LCG.IN2P3-CC.fr"},
        {"id": 1003, "status": "Killed", "minor_status": "Received Kill signal",
         "application_status": "Executing Step1_ctapipe_process", "site": "LCG.GRIF.fr"},
    ],
}


# Delta reads: every task and job was last updated at OLD, except task 2 and job 2002 of 4851,
# updated at EDGE exactly. 4852 is a transformation the delta reads are not asked about.
OLD = "2026-01-01 00:00:00"
EDGE = "2026-06-01 12:00:00"

DELTA_SCENARIO = {
    "transformations": [
        {"id": 4851, "name": "delta_a", "type": "Merging", "status": "Active", "group_size": 1},
        {"id": 4852, "name": "delta_b", "type": "Merging", "status": "Active", "group_size": 1},
    ],
    "tasks": [
        {"transformation": 4851, "task": 1, "job": 2001, "status": "Running", "last_update": OLD},
        {"transformation": 4851, "task": 2, "job": 2002, "status": "Running", "last_update": EDGE},
        {"transformation": 4851, "task": 3, "job": 2003, "status": "Running", "last_update": OLD},
        {"transformation": 4852, "task": 1, "job": 2004, "status": "Running", "last_update": OLD},
    ],
    "jobs": [
        {"id": 2001, "status": "Running", "minor_status": "Application",
         "application_status": "Executing Step1", "site": "LCG.GRIF.fr", "last_update": OLD},
        {"id": 2002, "status": "Running", "minor_status": "Application",
         "application_status": "Executing Step1", "site": "LCG.GRIF.fr", "last_update": EDGE},
        {"id": 2003, "status": "Stalled", "minor_status": "Job stalled: pilot not running",
         "application_status": "Executing Step1", "site": "LCG.CNAF.it", "last_update": OLD},
        {"id": 2004, "status": "Running", "minor_status": "Application",
         "application_status": "Executing Step1", "site": "LCG.CNAF.it", "last_update": OLD},
    ],
}


# Recovery (DataRecoveryAgent's reads and writes). Job 3001 failed but registered its outputs with
# jobID metadata (CTADIRAC); 3002 is an LHCb-style job with ProductionOutputData, one output
# missing; 3003 failed with nothing registered and a pending failover request.
R = "/ctao/r"
RECOVERY_SCENARIO = {
    "transformations": [
        {"id": 4861, "name": "recovery_merge", "type": "Merging", "status": "Active", "group_size": 2},
    ],
    "files": [
        {"transformation": 4861, "lfn": f"{R}/in1.h5", "status": "Assigned", "task": 1},
        {"transformation": 4861, "lfn": f"{R}/in2.h5", "status": "Assigned", "task": 1},
        {"transformation": 4861, "lfn": f"{R}/in3.h5", "status": "Assigned", "task": 2},
        {"transformation": 4861, "lfn": f"{R}/in4.h5", "status": "Processed", "task": 3},
        {"transformation": 4861, "lfn": f"{R}/in5.h5", "status": "Assigned", "task": 3},
    ],
    "tasks": [
        {"transformation": 4861, "task": 1, "job": 3001, "status": "Failed"},
        {"transformation": 4861, "task": 2, "job": 3002, "status": "Done"},
        {"transformation": 4861, "task": 3, "job": 3003, "status": "Failed"},
    ],
    "jobs": [
        {"id": 3001, "status": "Failed", "minor_status": "Application Finished With Errors",
         "application_status": "Failed upload", "site": "LCG.GRIF.fr"},
        {"id": 3002, "status": "Done", "minor_status": "Execution Complete", "application_status": "Done",
         "site": "LCG.CNAF.it", "input_data": [f"{R}/in3.h5"],
         "output_data": [f"{R}/out2.h5", f"{R}/out2b.h5"]},
        {"id": 3003, "status": "Failed", "minor_status": "Pending Requests", "application_status": "Failed",
         "site": "LCG.GRIF.fr"},
    ],
    "catalog": [
        {"lfn": f"{R}/in1.h5"}, {"lfn": f"{R}/in2.h5"}, {"lfn": f"{R}/in3.h5"},
        {"lfn": f"{R}/in4.h5"}, {"lfn": f"{R}/in5.h5"},
        {"lfn": f"{R}/out1a.h5", "metadata": {"jobID": "3001"}, "ancestors": [f"{R}/in1.h5", f"{R}/in2.h5"]},
        {"lfn": f"{R}/out1b.h5", "metadata": {"jobID": "3001"}},
        {"lfn": f"{R}/out2.h5", "metadata": {"jobID": "3002"}},
    ],
    "requests": [
        {"job": 3001, "status": "Done"},
        {"job": 3003, "status": "Waiting"},
    ],
}
