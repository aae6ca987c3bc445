//! Minimal globs for `grep`'s file filter: `*`, `?`, `**`, `[...]`, `{a,b}`.
//! A glob without `/` matches the file name, one with `/` the path relative
//! to the workspace root.

use regex::Regex;

#[derive(Debug)]
pub(crate) struct Glob {
    regex: Regex,
    whole_path: bool,
}

impl Glob {
    pub(crate) fn new(glob: &str) -> Result<Glob, String> {
        let glob = glob.trim();
        let glob = glob.strip_prefix("./").unwrap_or(glob);
        if glob.is_empty() {
            return Err("the glob is empty".into());
        }
        let mut re = String::from("^");
        let chars: Vec<char> = glob.chars().collect();
        let mut i = 0;
        let mut braces = 0usize;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '*' if chars.get(i + 1) == Some(&'*') => {
                    i += 1;
                    if chars.get(i + 1) == Some(&'/') {
                        i += 1;
                        re.push_str("(?:.*/)?");
                    } else {
                        re.push_str(".*");
                    }
                }
                '*' => re.push_str("[^/]*"),
                '?' => re.push_str("[^/]"),
                '[' => match chars[i + 1..].iter().position(|&c| c == ']') {
                    Some(len) if len > 0 => {
                        let class: String = chars[i + 1..i + 1 + len].iter().collect();
                        let class = class
                            .strip_prefix('!')
                            .map_or(class.clone(), |r| format!("^{r}"));
                        re.push('[');
                        re.push_str(&class.replace('\\', "\\\\").replace('[', "\\["));
                        re.push(']');
                        i += len + 1;
                    }
                    _ => re.push_str("\\["),
                },
                '{' => {
                    braces += 1;
                    re.push_str("(?:");
                }
                ',' if braces > 0 => re.push('|'),
                '}' if braces > 0 => {
                    braces -= 1;
                    re.push(')');
                }
                other => re.push_str(&regex::escape(&other.to_string())),
            }
            i += 1;
        }
        if braces > 0 {
            return Err(format!("the glob `{glob}` has an unclosed `{{`"));
        }
        re.push('$');
        let regex = Regex::new(&re).map_err(|e| format!("invalid glob `{glob}`: {e}"))?;
        Ok(Glob {
            regex,
            whole_path: glob.contains('/'),
        })
    }

    /// `relative` is the path from the workspace root, `/`-separated.
    pub(crate) fn matches(&self, relative: &str) -> bool {
        if self.whole_path {
            self.regex.is_match(relative)
        } else {
            let name = relative.rsplit('/').next().unwrap_or(relative);
            self.regex.is_match(name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn glob_table() {
        let cases = [
            ("*.rs", "src/main.rs", true),
            ("*.rs", "src/main.rsx", false),
            ("*.{rs,toml}", "Cargo.toml", true),
            ("*.{rs,toml}", "README.md", false),
            ("src/*.rs", "src/lib.rs", true),
            ("src/*.rs", "src/tools/mod.rs", false),
            ("src/**/*.rs", "src/tools/mod.rs", true),
            ("src/**/*.rs", "src/lib.rs", true),
            ("**/*.md", "README.md", true),
            ("./docs/**", "docs/a/b.txt", true),
            ("file?.txt", "file1.txt", true),
            ("file?.txt", "file10.txt", false),
            ("[ab]*.txt", "b.txt", true),
            ("[!ab]*.txt", "b.txt", false),
            ("a+b.txt", "a+b.txt", true),
            ("a+b.txt", "aab.txt", false),
        ];
        for (glob, path, want) in cases {
            assert_eq!(
                Glob::new(glob).unwrap().matches(path),
                want,
                "{glob} vs {path}"
            );
        }
        assert!(Glob::new("{a,b").is_err());
        assert!(Glob::new("").is_err());
    }
}
