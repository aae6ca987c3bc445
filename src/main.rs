fn main() -> std::process::ExitCode {
    lev::cli::main()
}
