//! The RBAC objects `kubeadm init` creates online for identities of the tree
//! (`docs/compatibility.md`, "RBAC that init creates"). Offline nobody creates them, and without
//! them `admin.conf` (1.29+) has no rights and, from the versions that drop
//! `apiserver-kubelet-client`'s O, the API server cannot reach kubelets.

use serde::Serialize;

use crate::KubernetesVersion;

/// The API group of RBAC objects (and of their User and Group subjects).
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Who a [`ClusterRoleBinding`] binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum SubjectKind {
    /// A user name (a client certificate's CN).
    User,
    /// A group (a client certificate's O).
    Group,
}

/// A ClusterRoleBinding kubeadm creates: `name` binds the ClusterRole `cluster_role` (a role the
/// API server makes itself, never one kubeadm creates) to one subject.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterRoleBinding {
    /// The object's name.
    pub name: &'static str,
    /// The ClusterRole it grants.
    pub cluster_role: &'static str,
    /// The kind of its one subject.
    pub subject_kind: SubjectKind,
    /// The subject's name.
    pub subject: &'static str,
}

/// The ClusterRoleBindings `kubeadm init` of version `v` creates for the tree's identities, in
/// the order kubeadm creates them:
/// - `kubeadm:cluster-admins` (1.29+): ClusterRole `cluster-admin` for the group
///   `kubeadm:cluster-admins`, admin.conf's O (kubeadm `EnsureAdminClusterRoleBindingImpl`,
///   PR #121305);
/// - `kubeadm:apiserver-kubelet-client` (the versions where `apiserver-kubelet-client` has no
///   O): ClusterRole `system:kubelet-api-admin` for the user `kube-apiserver-kubelet-client`
///   (kubeadm `AllowAPIServerToAccessKubeletAPI`, PR #138957).
///
/// Empty before 1.29: both identities are in `system:masters` there.
///
/// ```
/// use kubepki_kubeadm::{KubernetesVersion, cluster_role_bindings};
///
/// let names = |v| cluster_role_bindings(v).iter().map(|b| b.name).collect::<Vec<_>>();
/// assert!(names(KubernetesVersion::new(28, 9)).is_empty());
/// assert_eq!(names(KubernetesVersion::new(34, 7)), ["kubeadm:cluster-admins"]);
/// assert_eq!(
///     names(KubernetesVersion::new(34, 8)),
///     ["kubeadm:cluster-admins", "kubeadm:apiserver-kubelet-client"]
/// );
/// ```
pub fn cluster_role_bindings(v: KubernetesVersion) -> Vec<ClusterRoleBinding> {
    let mut out = Vec::new();
    if v.has_super_admin() {
        out.push(ClusterRoleBinding {
            name: "kubeadm:cluster-admins",
            cluster_role: "cluster-admin",
            subject_kind: SubjectKind::Group,
            subject: v.admin_org(),
        });
    }
    if v.drops_kubelet_client_org() {
        out.push(ClusterRoleBinding {
            name: "kubeadm:apiserver-kubelet-client",
            cluster_role: "system:kubelet-api-admin",
            subject_kind: SubjectKind::User,
            subject: crate::plan::APISERVER_KUBELET_CLIENT_CN,
        });
    }
    out
}

/// [`cluster_role_bindings`] as YAML documents for `kubectl apply -f -` (each as the API server
/// stores it: the subjects' `apiGroup` written out), after a comment naming the version; `None`
/// when the version has none.
pub fn rbac_yaml(v: KubernetesVersion) -> Option<String> {
    let bindings = cluster_role_bindings(v);
    if bindings.is_empty() {
        return None;
    }
    let mut text = format!(
        "# The ClusterRoleBindings kubeadm {v} creates at init for the tree's identities.\n\
         # Apply with a system:masters credential: kubectl --kubeconfig super-admin.conf apply -f FILE\n"
    );
    for b in &bindings {
        text.push_str("---\n");
        text.push_str(&b.to_yaml());
    }
    Some(text)
}

impl ClusterRoleBinding {
    /// The object as one YAML document (without `---`).
    pub fn to_yaml(&self) -> String {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Object<'a> {
            api_version: String,
            kind: &'a str,
            metadata: Meta<'a>,
            role_ref: Ref<'a>,
            subjects: [Ref<'a>; 1],
        }
        #[derive(Serialize)]
        struct Meta<'a> {
            name: &'a str,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Ref<'a> {
            api_group: &'a str,
            kind: &'a str,
            name: &'a str,
        }
        let subject_kind = match self.subject_kind {
            SubjectKind::User => "User",
            SubjectKind::Group => "Group",
        };
        let object = Object {
            api_version: format!("{RBAC_GROUP}/v1"),
            kind: "ClusterRoleBinding",
            metadata: Meta { name: self.name },
            role_ref: Ref {
                api_group: RBAC_GROUP,
                kind: "ClusterRole",
                name: self.cluster_role,
            },
            subjects: [Ref {
                api_group: RBAC_GROUP,
                kind: subject_kind,
                name: self.subject,
            }],
        };
        // Only fixed names: serialising cannot fail; an empty document would be refused by
        // the tests that read every version's output back.
        kubepki_csr::yaml::to_string(&object).unwrap_or_default()
    }
}
