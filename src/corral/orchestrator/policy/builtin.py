"""The built-in risk rules, in the same YAML an override file uses.

Defence in depth, not the sandbox: the sandbox already contains these actions; the
rules make the risky ones visible and give a human the decision where one is due.
"""

BUILTIN_RULES = r"""
rules:
  - name: git-push
    decision: require_approval
    tools: [bash]
    command: '\bgit\b(?:\s+(?:-[cC]\s+\S+|--?[\w-]+(?:=\S+)?))*\s+push\b'
    reason: a push publishes work outside the sandbox; corral delivers changes itself

  - name: pipe-to-shell
    decision: deny
    tools: [bash]
    command: '\b(?:curl|wget)\b[^\n;]*\|\s*(?:sudo\s+)?(?:env\s+(?:\S+=\S+\s+)*)?(?:ba|z|da|k|fi)?sh\b|\b(?:ba|z|da)?sh\s+(?:-c\s+)?["'']?(?:\$\(|<\()\s*(?:curl|wget)\b'
    reason: running a script straight from the network

  - name: delete-outside-workspace
    decision: deny
    tools: [bash]
    command: '\brm\b[^\n;&|]*?\s(?:--no-preserve-root|/(?:\*|\s|$)|/(?!workspace\b|tmp\b)[\w.*-]|~|\$\{?HOME\b|\.\.(?:/|\s|$))'
    reason: deleting files outside the workspace

  - name: ci-files
    decision: require_approval
    tools: [editor]
    paths: ['.github/workflows/*', '.gitlab-ci.yml', '.circleci/*', '.travis.yml', 'Jenkinsfile', 'azure-pipelines.yml', '.buildkite/*']
    args: {command: '^(?:create|str_replace|insert|undo)$'}
    reason: CI configuration runs with the repository's credentials

  - name: ci-files-shell
    decision: require_approval
    tools: [bash]
    command: '^(?=[\s\S]*(?:\.github/workflows|\.gitlab-ci\.yml|\.circleci/|\.travis\.yml|Jenkinsfile|azure-pipelines\.yml))(?=[\s\S]*(?:(?<![0-9&])>(?!&)|\btee\b|\bsed\s+(?:-\w+\s+)*-i|\bmv\b|\bcp\b|\brm\b|\btruncate\b|\bgit\s+(?:rm|mv|checkout|restore)\b))'
    reason: CI configuration runs with the repository's credentials

  - name: unknown-index
    decision: require_approval
    tools: [bash]
    command: '\b(?:pip3?|uv|poetry|pipx|python3?\s+-m\s+pip)\b[^\n;&|]*\s(?:--index-url|--extra-index-url|-i|--trusted-host|--find-links|-f)(?:\s+|=)(?!https://pypi\.org/simple/?(?:\s|$)|\.corral/wheels/?(?:\s|$))\S|\b(?:npm|yarn|pnpm)\b[^\n;&|]*--registry(?:\s+|=)(?!https://registry\.npmjs\.org/?(?:\s|$))\S'
    reason: installing packages from an index other than the public one (or the wheelhouse corral fills from it)
"""  # noqa: E501
