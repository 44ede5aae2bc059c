fn main() -> std::process::ExitCode {
    glassbox::cli::main()
}
