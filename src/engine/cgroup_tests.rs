//! The cgroup v2 path against a directory standing in for the cgroup root:
//! which limits are selected, and the files written for an attempt.

use super::*;

/// A stand-in cgroup root offering `controllers`, with an empty `subtree_control`.
fn fake_root(controllers: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("cgroup.controllers"), controllers).unwrap();
    std::fs::write(root.path().join("cgroup.subtree_control"), "").unwrap();
    root
}

/// The kernel gives a new group its `cgroup.subtree_control`; a directory does not.
fn kernel_files_of(root: &Path, name: &str) {
    std::fs::create_dir(root.join(name)).unwrap();
    std::fs::write(root.join(name).join("cgroup.subtree_control"), "").unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn finds_the_group_under_the_cgroup2_mount() {
    // This machine's: a v1 hierarchy beside a v2 one holding only hugetlb.
    let mountinfo = "\
30 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 30 0:36 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    let cgroup = "4:memory:/process_api/x\n0::/user.slice/batchfan\n";
    assert_eq!(
        group_of(mountinfo, cgroup),
        Some(PathBuf::from("/sys/fs/cgroup/unified/user.slice/batchfan"))
    );
    assert_eq!(group_of(mountinfo, "0::/\n"), Some(PathBuf::from("/sys/fs/cgroup/unified/")));
    assert_eq!(group_of("35 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw\n", "0::/\n"), None);
    assert_eq!(group_of(mountinfo, "4:memory:/x\n"), None, "no v2 line: no group");
}

#[test]
fn without_memory_and_cpu_controllers_the_watchdog_is_in_force_and_says_why() {
    let root = fake_root("hugetlb\n");
    let limits = Limits::select(Some(root.path()), "batchfan-1");
    let line = limits.describe();
    assert!(limits.cgroups().is_none(), "{line}");
    assert!(line.starts_with("memory: watchdog"), "{line}");
    assert!(line.contains("cpu: not enforced"), "{line}");
    assert!(line.contains("does not offer the memory controller (it offers: hugetlb)"), "{line}");
    assert!(!root.path().join("batchfan-1").exists(), "nothing created when not usable");
    assert_eq!(read(&root.path().join("cgroup.subtree_control")), "", "nothing enabled");

    let cpu_only = fake_root("cpu io\n");
    let line = Limits::select(Some(cpu_only.path()), "b").describe();
    assert!(line.contains("does not offer the memory controller"), "{line}");
    let memory_only = fake_root("memory pids\n");
    let line = Limits::select(Some(memory_only.path()), "b").describe();
    assert!(line.contains("does not offer the cpu controller"), "{line}");

    let none = Limits::select(None, "b").describe();
    assert!(none.contains("no cgroup2 mount"), "{none}");
}

#[test]
fn a_group_the_engine_cannot_write_leaves_the_watchdog_in_force() {
    let root = fake_root("memory cpu\n");
    std::fs::remove_file(root.path().join("cgroup.subtree_control")).unwrap();
    let line = Limits::select(Some(root.path()), "b").describe();
    assert!(line.starts_with("memory: watchdog"), "{line}");
    assert!(line.contains("cannot read") && line.contains("cgroup.subtree_control"), "{line}");
}

#[test]
fn with_both_controllers_each_attempt_gets_a_group_with_its_limits() {
    let root = fake_root("cpuset cpu io memory hugetlb pids\n");
    kernel_files_of(root.path(), "batchfan-42");
    let limits = Limits::select(Some(root.path()), "batchfan-42");
    let line = limits.describe();
    let groups = limits.cgroups().unwrap_or_else(|| panic!("cgroup expected: {line}"));
    assert!(
        line.starts_with("memory: cgroup v2 memory.max") && line.contains("cpu: cgroup v2 cpu.max"),
        "{line}"
    );
    assert_eq!(read(&root.path().join("cgroup.subtree_control")), "+memory +cpu");
    let own = root.path().join("batchfan-42");
    assert_eq!(read(&own.join("cgroup.subtree_control")), "+memory +cpu", "enabled for attempts");

    let dir = groups.attempt_dir("job-1:7", 2);
    assert_eq!(dir, own.join("job-1.7.2"));
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("cgroup.procs"), "").unwrap(); // the kernel's file
    let group = AttemptGroup { dir: dir.clone(), memory_mib: 64, mcpu: 2000 };
    let mut procs = group.prepare().unwrap();
    assert_eq!(read(&dir.join("memory.max")), (64 * 1024 * 1024).to_string());
    assert_eq!(read(&dir.join("memory.swap.max")), "0");
    assert_eq!(read(&dir.join("memory.oom.group")), "1");
    assert_eq!(read(&dir.join("cpu.max")), "200000 100000", "2 vCPUs: 200 ms per 100 ms");
    std::io::Write::write_all(&mut procs, b"0").unwrap();
    assert_eq!(read(&dir.join("cgroup.procs")), "0", "the returned file is the group's cgroup.procs");

    // A real group is empty once its processes are gone (its files are the kernel's).
    let ended = groups.attempt_dir("job-2", 1);
    std::fs::create_dir(&ended).unwrap();
    remove(&ended);
    assert!(!ended.exists(), "an ended attempt's group is removed");
}

#[test]
fn controllers_already_enabled_are_left_as_they_are() {
    let root = fake_root("memory cpu\n");
    std::fs::write(root.path().join("cgroup.subtree_control"), "cpu memory\n").unwrap();
    kernel_files_of(root.path(), "b");
    assert!(Limits::select(Some(root.path()), "b").cgroups().is_some());
    assert_eq!(read(&root.path().join("cgroup.subtree_control")), "cpu memory\n");
}

#[test]
fn cpu_max_follows_vcpus_down_to_the_kernels_minimum() {
    assert_eq!(cpu_max(1000), "100000 100000");
    assert_eq!(cpu_max(250), "25000 100000", "Fargate's 0.25 vCPU");
    assert_eq!(cpu_max(4000), "400000 100000");
    assert_eq!(cpu_max(1), "1000 100000", "never below 1 ms per period");
}

#[test]
fn an_oom_kill_is_read_from_memory_events() {
    let dir = tempfile::tempdir().unwrap();
    assert!(!oom_killed(dir.path()), "no file: not killed");
    let events = dir.path().join("memory.events");
    std::fs::write(&events, "low 0\nhigh 0\nmax 12\noom 1\noom_kill 0\noom_group_kill 0\n").unwrap();
    assert!(!oom_killed(dir.path()), "reaching max is not a kill");
    std::fs::write(&events, "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 1\n").unwrap();
    assert!(oom_killed(dir.path()));
}
