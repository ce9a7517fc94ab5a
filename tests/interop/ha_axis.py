"""Drive a doorsim with the Home Assistant `axis` library (pinned in tests/ha_axis_library.rs).

Usage: ha_axis.py HOST HTTP_PORT CONTROL_BASE_URL [WEB_PROTO]
WEB_PROTO is http (the default) or https (the device's self-signed certificate is not verified,
as Home Assistant's verify_ssl=False does).
Sets the device up the way Home Assistant does, lists its ports, starts the library's own event
stream (RTSP on port 554 of HOST, metadata over RTP/UDP), presses the call button through the
control API and waits for the input-port event. Prints one JSON object with what it saw.
"""
import asyncio
import json
import sys

import httpx
from axis.device import AxisDevice
from axis.models.configuration import Configuration


async def main(host: str, port: int, control: str, proto: str) -> dict:
    async with httpx.AsyncClient(verify=False) as session:
        configuration = Configuration(
            session, host, port=port, username="root", password="pass", web_proto=proto, verify_ssl=False
        )
        device = AxisDevice(configuration)
        await device.vapix.initialize()
        await device.vapix.initialize_users()
        await device.vapix.load_user_groups()
        out = {
            "product_number": device.vapix.product_number,
            "product_type": device.vapix.product_type,
            "serial_number": device.vapix.serial_number,
            "firmware_version": device.vapix.firmware_version,
            "ports": [
                {"id": p.id, "name": p.name, "direction": p.direction, "state": p.state}
                for p in device.vapix.ports.values()
            ],
            "access_rights": str(device.vapix.access_rights),
            "events": [],
        }
        pressed = asyncio.Event()
        playing = asyncio.Event()

        def on_event(event) -> None:
            out["events"].append(
                {"topic": event.topic, "id": event.id, "state": event.state, "operation": str(event.operation)}
            )
            if event.topic == "tns1:Device/tnsaxis:IO/Port" and event.id == "0" and event.state == "1":
                pressed.set()

        def on_status(signal) -> None:
            if str(signal) == "playing":
                playing.set()

        device.enable_events()
        device.event.subscribe(on_event)
        device.stream.connection_status_callback.append(on_status)
        device.stream.start()
        await asyncio.wait_for(playing.wait(), 10)
        # Wait for the current states (Initialized) before changing one.
        for _ in range(50):
            if out["events"]:
                break
            await asyncio.sleep(0.1)
        r = await session.post(control + "/emulator/v1/button/press", auth=httpx.DigestAuth("root", "pass"))
        out["press_status"] = r.status_code
        await asyncio.wait_for(pressed.wait(), 10)
        device.stream.stop()
        return out


if __name__ == "__main__":
    proto = sys.argv[4] if len(sys.argv) > 4 else "http"
    print(json.dumps(asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], proto))))
