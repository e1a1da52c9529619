"""EC2: N instances whose user-data installs and starts a worker, tagged so they can be found again.

Configuration from the environment (all optional but the image): ``WORKQUEUE_EC2_IMAGE`` (an AMI),
``WORKQUEUE_EC2_INSTANCE_TYPE`` (default t3.small), ``WORKQUEUE_EC2_INSTALL`` (the shell line that
installs workqueue on the instance; default ``python3 -m pip install workqueue``), and boto3's own
``AWS_*`` settings (region, credentials, ``AWS_ENDPOINT_URL``).
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence

from .base import BatchError, BatchSystem, WorkerSpec

TAG = "workqueue-worker"
STATES = {"pending": "pending", "running": "running"}


class EC2(BatchSystem):
    name = "ec2"

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import boto3
            except ImportError:
                raise BatchError("ec2 needs boto3 (pip install boto3)") from None
            self._client = boto3.client("ec2", region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
        return self._client

    def user_data(self, spec: WorkerSpec) -> str:
        install = os.environ.get("WORKQUEUE_EC2_INSTALL", "python3 -m pip install workqueue")
        command = " ".join(["work_queue_worker", *spec.worker_command()[3:]])  # drop this machine's interpreter
        return f"#!/bin/sh\n{install}\nexec {command}\n"

    def submit(self, count: int, spec: WorkerSpec) -> List[str]:
        image = os.environ.get("WORKQUEUE_EC2_IMAGE")
        if not image:
            raise BatchError("set WORKQUEUE_EC2_IMAGE to the AMI the workers should boot")
        manager = spec.manager_name or f"{spec.host}:{spec.port}"
        reply = self.client.run_instances(
            ImageId=image, InstanceType=os.environ.get("WORKQUEUE_EC2_INSTANCE_TYPE", "t3.small"),
            MinCount=count, MaxCount=count, UserData=self.user_data(spec),
            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": TAG, "Value": manager}, {"Key": "Name", "Value": f"workqueue worker for {manager}"}]}])
        return [instance["InstanceId"] for instance in reply["Instances"]]

    def find(self, manager: Optional[str] = None) -> List[str]:
        """Instances this tool started (for one manager, or all), not yet terminated."""
        filters = [{"Name": f"tag:{TAG}", "Values": [manager] if manager else ["*"]},
                   {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
        reply = self.client.describe_instances(Filters=filters)
        return [i["InstanceId"] for r in reply["Reservations"] for i in r["Instances"]]

    def states(self, job_ids: Sequence[str]) -> Dict[str, str]:
        reply = self.client.describe_instances(InstanceIds=list(job_ids))
        seen = {i["InstanceId"]: STATES.get(i["State"]["Name"], "done")
                for r in reply["Reservations"] for i in r["Instances"]}
        return {j: seen.get(j, "done") for j in job_ids}

    def cancel(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            self.client.terminate_instances(InstanceIds=list(job_ids))
