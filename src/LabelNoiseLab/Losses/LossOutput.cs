namespace LabelNoiseLab.Losses;

/// <summary>A loss: the scalar to back-propagate (weighted batch mean) and each sample's loss.</summary>
public readonly record struct LossOutput(Tensor Mean, Tensor PerSample);
