using LabelNoiseLab.Tensors;

namespace LabelNoiseLab.Tests;

public class SmokeTests
{
    [Fact]
    public void Tensor_view_shares_storage()
    {
        var t = new Tensor(2, 3);
        var v = t.View(3, 2);
        v[5] = 7f;
        Assert.Equal(7f, t[1, 2]);
    }
}
