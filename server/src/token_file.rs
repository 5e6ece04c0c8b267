//! Reading a bearer token's file (`--auth-token-file`, the scenario's
//! `[server] auth_token_file`): a regular file no one but its owner can
//! read or write, of at most [`MAX_TOKEN_FILE_BYTES`], whose contents
//! without a trailing newline are the secret.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The largest token file read: a token is a line, not a document.
pub const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// The secret in the file at `path`, or why it cannot be used (the message
/// names the path and, for a file others can read, the fix).
pub fn read(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown}: not a regular file"));
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{shown}: the file is readable or writable by group or others (mode {:o}); a \
             token anyone on this host can read protects nothing: chmod 600 {shown}",
            mode & 0o777
        ));
    }
    let text = crate::files::read_regular(path, MAX_TOKEN_FILE_BYTES)
        .map_err(|e| format!("{shown}: {e}"))?;
    let secret = text.strip_suffix(b"\n").unwrap_or(&text);
    let secret = secret.strip_suffix(b"\r").unwrap_or(secret);
    if secret.is_empty() {
        return Err(format!(
            "{shown}: the token is empty; put the token in the file"
        ));
    }
    Ok(secret.to_vec())
}

/// [`read`] for a client that sends the token in an `Authorization:
/// Bearer` header: the token must be printable ASCII without spaces.
pub fn read_for_header(path: &Path) -> Result<String, String> {
    String::from_utf8(read(path)?)
        .ok()
        .filter(|t| t.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            format!(
                "{}: the token is sent in an Authorization header, so it must be printable \
                 ASCII without spaces",
                path.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, contents: &[u8], mode: u32) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("floodgate-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn the_secret_is_the_first_line_without_its_newline() {
        assert_eq!(read(&file("ok", b"s3cret\r\n", 0o600)).unwrap(), b"s3cret");
    }

    #[test]
    fn unusable_files_are_refused_with_the_reason() {
        let open = read(&file("open", b"s3cret", 0o644)).unwrap_err();
        assert!(open.contains("chmod 600"), "{open}");
        let empty = read(&file("empty", b"\n", 0o600)).unwrap_err();
        assert!(empty.contains("empty"), "{empty}");
        let long = read(&file("long", &[b'a'; 5000], 0o600)).unwrap_err();
        assert!(long.contains("longer than 4096"), "{long}");
        let dir = read(&std::env::temp_dir()).unwrap_err();
        assert!(dir.contains("not a regular file"), "{dir}");
        assert!(
            read(Path::new("/dev/zero"))
                .unwrap_err()
                .contains("not a regular file")
        );
        let spaced = read_for_header(&file("spaced", b"a b", 0o600)).unwrap_err();
        assert!(spaced.contains("printable ASCII"), "{spaced}");
        assert_eq!(
            read_for_header(&file("header", b"a-b_c\n", 0o600)).unwrap(),
            "a-b_c"
        );
    }
}
