"""``scontrol show job`` as other clusters print it (tests/data/slurm/real, see its SOURCE.md):
keys this project's Slurm 22.05 never printed must not glue text onto the previous value."""

from __future__ import annotations

from pathlib import Path

from celline_jobs_nb.schedulers.slurm import parse_scontrol_jobs, scontrol_accounting

REAL = Path(__file__).resolve().parents[1] / "data" / "slurm" / "real"


def real(name: str) -> str:
    return (REAL / name).read_text(encoding="utf-8")


def test_pending_job_with_a_planned_node_has_no_nodes_and_so_no_start():
    [job] = parse_scontrol_jobs(real("scontrol-pending-schednodelist.txt"))
    assert job["NodeList"] == "(null)" and job["SchedNodeList"] == "p2042"
    assert job["Power"] == "" and job["SICP"] == "0" and job["Shared"] == "OK"
    facts = scontrol_accounting(job)
    assert facts.state == "PENDING" and facts.nodes is None
    # The same record in the one-line form (-o), as the adapter asks for it.
    [flat] = parse_scontrol_jobs(" ".join(real("scontrol-pending-schednodelist.txt").split()))
    assert flat == job


def test_federation_gres_and_per_node_lines_are_pairs_of_their_own():
    one, gpu, fed = parse_scontrol_jobs(real("scontrol-d-fed-gres-pernode.txt"))
    assert one["NodeList"] == "node-[63-65]" and one["Gres"] == "(null)"
    assert one["CoreSpec"] == "*" and one["Nodes"] == "node-63" and one["CPU_IDs"] == "22-23"
    assert one["GRES_IDX"] == "" and one["Power"] == ""
    assert gpu["Gres"] == "gpu:4" and gpu["GRES_IDX"] == "gpu(IDX:0,2-3,5)"
    assert fed["NodeList"] == "(null)" and fed["FedOrigin"] == "debug"
    assert fed["FedViableSiblings"] == "debug" and fed["FedActiveSiblings"] == "debug"
    assert fed["Command"] == "(null)" and fed["ClusterFeatures"] == "c-f1"
    facts = [scontrol_accounting(r) for r in (one, gpu, fed)]
    assert [f.nodes for f in facts] == ["node-[63-65]", "node-06", None]
    assert [f.state for f in facts] == ["RUNNING", "RUNNING", "PENDING"]
    assert facts[2].start is None and facts[2].reason == "AssocGrpCpuLimit"


def test_ntasks_per_tres_with_a_colon_and_a_command_with_arguments():
    running, pending = parse_scontrol_jobs(real("scontrol-ntaskspertres.txt"))
    assert running["Power"] == "" and running["NtasksPerTRES"] == "0"
    assert running["Command"].endswith("run_prefactor-cwltool.sh L721962 HBA_target")
    assert pending["Reason"] == "ReqNodeNotAvail,_UnavailableNodes:wn-db-05"
    assert pending["Dependency"] == "(null)" and pending["NodeList"] == "(null)"
    assert scontrol_accounting(pending).nodes is None
    assert scontrol_accounting(running).nodes == "wn-ha-01"


def test_a_stray_word_is_not_glued_onto_a_value_without_spaces():
    [job] = parse_scontrol_jobs("JobId=5 JobName=a b=c UserId=u(1) NodeList=(null) junk SchedNodeList=n1\n")
    assert job["JobName"] == "a b=c" and job["UserId"] == "u(1)"
    assert job["NodeList"] == "(null)" and job["SchedNodeList"] == "n1"
