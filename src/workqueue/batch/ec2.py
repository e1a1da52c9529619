"""EC2: N instances whose user-data installs and starts a worker, tagged so they can be found again.

Configuration from the environment (all optional but the image): ``WORKQUEUE_EC2_IMAGE`` (an AMI),
``WORKQUEUE_EC2_INSTANCE_TYPE`` (default t3.small), ``WORKQUEUE_EC2_INSTALL`` (the shell line that
installs workqueue on the instance; default ``python3 -m pip install workqueue``), and boto3's own
``AWS_*`` settings (region, credentials, ``AWS_ENDPOINT_URL``).
"""
from __future__ import annotations

import logging
import os
import shlex
from typing import Any, Dict, List, Optional, Sequence

from .base import BatchError, BatchSystem, WorkerSpec

log = logging.getLogger(__name__)

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
        command = " ".join(shlex.quote(part) for part in ["work_queue_worker", *spec.worker_arguments()])
        exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in spec.env.items())
        return f"#!/bin/sh\n{install}\n{exports}exec {command}\n"

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
        """By a filter, not by InstanceIds=: EC2 refuses a whole request naming one instance it has
        forgotten (terminated instances stay visible about an hour), where a filter just leaves it out."""
        if not job_ids:
            return {}
        try:
            reply = self.client.describe_instances(Filters=[{"Name": "instance-id", "Values": list(job_ids)}])
        except Exception as error:  # botocore's errors, or no network: nothing new is known this time
            log.warning("describe_instances failed; the state of the instances is unknown this time: %s", error)
            return {}
        seen = {i["InstanceId"]: STATES.get(i["State"]["Name"], "done")
                for r in reply["Reservations"] for i in r["Instances"]}
        return {j: seen.get(j, "done") for j in job_ids}

    def cancel(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            self.client.terminate_instances(InstanceIds=list(job_ids))
