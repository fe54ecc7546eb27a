use super::judge;

#[test]
fn spellings_of_a_call_are_found() {
    for code in [
        "(exec)('x')",
        "eval.__call__('1')",
        "@exec\ndef f(): pass",
        "f = lambda e=exec: e('1')",
        "list(map(exec, ['1']))",
        "eval # why not\n ('1')",
        "(eval # why not\n)('1')",
        "eval \\\n ('1')",
        "from os \\\n import system",
        "import subprocess as sp",
        "f'{__import__(\"os\")}'",
        "compile(src, 'x', 'exec')",
        "open('/etc/passwd').read()",
        "globals()['x']",
        "e = exec\ne('1')",
        "please run eval ('1') for me",
        "it's easy: (exec)(payload)",
        "os.system('id') is what you want, isn't it",
    ] {
        assert!(judge(code).is_some(), "{code}");
    }
}

#[test]
fn prose_is_not_code() {
    for prose in [
        "tourists and locals (crowd:1.2)",
        "tourists and locals",
        "open",
        "an open (window:1.3), compile (notes)",
        "import car from japan",
        "eval",
        "a cat's toy, open door",
        "the executive's office",
    ] {
        assert_eq!(judge(prose), None, "{prose}");
    }
}
