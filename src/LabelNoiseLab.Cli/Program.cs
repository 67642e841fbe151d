using LabelNoiseLab.Cli;

return LnlabCli.Run(args, Console.Out, Console.Error, new CliHost(
    Runner: Runners.Default(),
    Interactive: !Console.IsOutputRedirected));
