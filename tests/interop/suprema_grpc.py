"""A G-SDK style client of doorsim's Suprema VoIP service, with Python grpcio stubs generated
from the repository's protos (tests/suprema.rs makes them). One call per run; prints one JSON
object: {"ok": true, "result": {...}} or {"ok": false, "code": "NOT_FOUND", "details": "..."}.

usage: suprema_grpc.py STUBS TARGET get DEVICE_ID [gsdk]
       suprema_grpc.py STUBS TARGET set DEVICE_ID CONFIG_JSON [gsdk]
       suprema_grpc.py STUBS TARGET multi DEVICE_IDS_JSON CONFIG_JSON
"""

import json
import sys

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402

import voip_pb2  # noqa: E402


def stub(channel, gsdk):
    if gsdk:
        import gsdk_voip_pb2_grpc

        return gsdk_voip_pb2_grpc.VOIPStub(channel)
    import voip_pb2_grpc

    return voip_pb2_grpc.VOIPStub(channel)


def as_dict(message):
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def main():
    target, command = sys.argv[2], sys.argv[3]
    gsdk = sys.argv[-1] == "gsdk"
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=20)
        voip = stub(channel, gsdk)
        try:
            if command == "get":
                answer = voip.GetConfig(voip_pb2.GetConfigRequest(deviceID=int(sys.argv[4])), timeout=20)
            elif command == "set":
                config = json_format.ParseDict(json.loads(sys.argv[5]), voip_pb2.VOIPConfig())
                answer = voip.SetConfig(voip_pb2.SetConfigRequest(deviceID=int(sys.argv[4]), config=config), timeout=20)
            elif command == "multi":
                config = json_format.ParseDict(json.loads(sys.argv[5]), voip_pb2.VOIPConfig())
                ids = json.loads(sys.argv[4])
                answer = voip.SetConfigMulti(voip_pb2.SetConfigMultiRequest(deviceIDs=ids, config=config), timeout=20)
            else:
                raise SystemExit(f"unknown command {command}")
            print(json.dumps({"ok": True, "result": as_dict(answer)}))
        except grpc.RpcError as e:
            print(json.dumps({"ok": False, "code": e.code().name, "details": e.details()}))


main()
