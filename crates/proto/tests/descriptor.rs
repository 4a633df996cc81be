//! The gRPC surface, pinned: every service and method of the etcd packages, with its request
//! and response types and streaming shape, read back from `FILE_DESCRIPTOR_SET`. etcd clients
//! call `/<package>.<Service>/<Method>`, so a renamed service or method breaks them even when
//! every message is right; this golden list (etcd 3.4's) catches that.

use prost::Message;
use prost_types::FileDescriptorSet;

fn methods(package: &str) -> Vec<String> {
    let set = FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let mut out = Vec::new();
    for file in set.file.iter().filter(|f| f.package() == package) {
        for service in &file.service {
            for m in &service.method {
                let stream = |yes: bool| if yes { "stream " } else { "" };
                out.push(format!(
                    "/{package}.{}/{}({}{}) -> {}{}",
                    service.name(),
                    m.name(),
                    stream(m.client_streaming()),
                    m.input_type().trim_start_matches('.'),
                    stream(m.server_streaming()),
                    m.output_type().trim_start_matches('.'),
                ));
            }
        }
    }
    out
}

#[test]
fn etcd_services_and_methods_match_etcd_3_4() {
    let expected = [
        "/etcdserverpb.KV/Range(etcdserverpb.RangeRequest) -> etcdserverpb.RangeResponse",
        "/etcdserverpb.KV/Put(etcdserverpb.PutRequest) -> etcdserverpb.PutResponse",
        "/etcdserverpb.KV/DeleteRange(etcdserverpb.DeleteRangeRequest) -> etcdserverpb.DeleteRangeResponse",
        "/etcdserverpb.KV/Txn(etcdserverpb.TxnRequest) -> etcdserverpb.TxnResponse",
        "/etcdserverpb.KV/Compact(etcdserverpb.CompactionRequest) -> etcdserverpb.CompactionResponse",
        "/etcdserverpb.Watch/Watch(stream etcdserverpb.WatchRequest) -> stream etcdserverpb.WatchResponse",
        "/etcdserverpb.Lease/LeaseGrant(etcdserverpb.LeaseGrantRequest) -> etcdserverpb.LeaseGrantResponse",
        "/etcdserverpb.Lease/LeaseRevoke(etcdserverpb.LeaseRevokeRequest) -> etcdserverpb.LeaseRevokeResponse",
        "/etcdserverpb.Lease/LeaseKeepAlive(stream etcdserverpb.LeaseKeepAliveRequest) -> stream etcdserverpb.LeaseKeepAliveResponse",
        "/etcdserverpb.Lease/LeaseTimeToLive(etcdserverpb.LeaseTimeToLiveRequest) -> etcdserverpb.LeaseTimeToLiveResponse",
        "/etcdserverpb.Lease/LeaseLeases(etcdserverpb.LeaseLeasesRequest) -> etcdserverpb.LeaseLeasesResponse",
        "/etcdserverpb.Cluster/MemberAdd(etcdserverpb.MemberAddRequest) -> etcdserverpb.MemberAddResponse",
        "/etcdserverpb.Cluster/MemberRemove(etcdserverpb.MemberRemoveRequest) -> etcdserverpb.MemberRemoveResponse",
        "/etcdserverpb.Cluster/MemberUpdate(etcdserverpb.MemberUpdateRequest) -> etcdserverpb.MemberUpdateResponse",
        "/etcdserverpb.Cluster/MemberList(etcdserverpb.MemberListRequest) -> etcdserverpb.MemberListResponse",
        "/etcdserverpb.Cluster/MemberPromote(etcdserverpb.MemberPromoteRequest) -> etcdserverpb.MemberPromoteResponse",
        "/etcdserverpb.Maintenance/Alarm(etcdserverpb.AlarmRequest) -> etcdserverpb.AlarmResponse",
        "/etcdserverpb.Maintenance/Status(etcdserverpb.StatusRequest) -> etcdserverpb.StatusResponse",
        "/etcdserverpb.Maintenance/Defragment(etcdserverpb.DefragmentRequest) -> etcdserverpb.DefragmentResponse",
        "/etcdserverpb.Maintenance/Hash(etcdserverpb.HashRequest) -> etcdserverpb.HashResponse",
        "/etcdserverpb.Maintenance/HashKV(etcdserverpb.HashKVRequest) -> etcdserverpb.HashKVResponse",
        "/etcdserverpb.Maintenance/Snapshot(etcdserverpb.SnapshotRequest) -> stream etcdserverpb.SnapshotResponse",
        "/etcdserverpb.Maintenance/MoveLeader(etcdserverpb.MoveLeaderRequest) -> etcdserverpb.MoveLeaderResponse",
        "/etcdserverpb.Auth/AuthEnable(etcdserverpb.AuthEnableRequest) -> etcdserverpb.AuthEnableResponse",
        "/etcdserverpb.Auth/AuthDisable(etcdserverpb.AuthDisableRequest) -> etcdserverpb.AuthDisableResponse",
        "/etcdserverpb.Auth/Authenticate(etcdserverpb.AuthenticateRequest) -> etcdserverpb.AuthenticateResponse",
        "/etcdserverpb.Auth/UserAdd(etcdserverpb.AuthUserAddRequest) -> etcdserverpb.AuthUserAddResponse",
        "/etcdserverpb.Auth/UserGet(etcdserverpb.AuthUserGetRequest) -> etcdserverpb.AuthUserGetResponse",
        "/etcdserverpb.Auth/UserList(etcdserverpb.AuthUserListRequest) -> etcdserverpb.AuthUserListResponse",
        "/etcdserverpb.Auth/UserDelete(etcdserverpb.AuthUserDeleteRequest) -> etcdserverpb.AuthUserDeleteResponse",
        "/etcdserverpb.Auth/UserChangePassword(etcdserverpb.AuthUserChangePasswordRequest) -> etcdserverpb.AuthUserChangePasswordResponse",
        "/etcdserverpb.Auth/UserGrantRole(etcdserverpb.AuthUserGrantRoleRequest) -> etcdserverpb.AuthUserGrantRoleResponse",
        "/etcdserverpb.Auth/UserRevokeRole(etcdserverpb.AuthUserRevokeRoleRequest) -> etcdserverpb.AuthUserRevokeRoleResponse",
        "/etcdserverpb.Auth/RoleAdd(etcdserverpb.AuthRoleAddRequest) -> etcdserverpb.AuthRoleAddResponse",
        "/etcdserverpb.Auth/RoleGet(etcdserverpb.AuthRoleGetRequest) -> etcdserverpb.AuthRoleGetResponse",
        "/etcdserverpb.Auth/RoleList(etcdserverpb.AuthRoleListRequest) -> etcdserverpb.AuthRoleListResponse",
        "/etcdserverpb.Auth/RoleDelete(etcdserverpb.AuthRoleDeleteRequest) -> etcdserverpb.AuthRoleDeleteResponse",
        "/etcdserverpb.Auth/RoleGrantPermission(etcdserverpb.AuthRoleGrantPermissionRequest) -> etcdserverpb.AuthRoleGrantPermissionResponse",
        "/etcdserverpb.Auth/RoleRevokePermission(etcdserverpb.AuthRoleRevokePermissionRequest) -> etcdserverpb.AuthRoleRevokePermissionResponse",
    ];
    assert_eq!(methods("etcdserverpb"), expected);
}

#[test]
fn raftkv_services_are_declared() {
    assert_eq!(
        methods("raftkv.v1"),
        [
            "/raftkv.v1.RaftKv/Append(raftkv.v1.AppendRequest) -> raftkv.v1.AppendResponse",
            "/raftkv.v1.RaftKv/SessionPut(raftkv.v1.SessionPutRequest) -> etcdserverpb.PutResponse",
            "/raftkv.v1.RaftKv/SessionDeleteRange(raftkv.v1.SessionDeleteRangeRequest) -> etcdserverpb.DeleteRangeResponse",
            "/raftkv.v1.RaftKv/SessionTxn(raftkv.v1.SessionTxnRequest) -> etcdserverpb.TxnResponse",
            "/raftkv.v1.RaftKv/TransferLeader(raftkv.v1.TransferLeaderRequest) -> raftkv.v1.TransferLeaderResponse",
        ]
    );
    assert_eq!(
        methods("raftkv.peer.v1"),
        ["/raftkv.peer.v1.Peer/Forward(raftkv.peer.v1.ForwardRequest) -> raftkv.peer.v1.ForwardResponse"]
    );
}

#[test]
fn descriptor_set_holds_every_file() {
    let set = FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut names: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "authpb/auth.proto",
            "etcdserverpb/rpc.proto",
            "mvccpb/kv.proto",
            "raftkv/peer/v1/peer.proto",
            "raftkv/v1/raftkv.proto",
        ]
    );
}
